"""Typed errors of Redo's API, carrying its problem+json detail.

::

    RedoHooksError
    └── RedoAPIError              any failed call; .status, .title, .detail
        ├── APIUnreachable        no HTTP answer (connection refused, timeout)
        ├── InvalidRequest        400, 409, 422: what was sent is wrong
        ├── AuthenticationError   401, 403: missing, wrong or under-scoped API secret
        ├── NotFound              404
        ├── RateLimited           429, still after the retries
        └── ServerError           5xx, still after the retries
"""

from __future__ import annotations

from typing import Any

from ..errors import RedoHooksError


class RedoAPIError(RedoHooksError):
    """A call to Redo's API failed. ``detail`` is Redo's own words when it gave any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail
        self.problem = problem or {}


class APIUnreachable(RedoAPIError):
    """No HTTP answer: connection refused, DNS failure, or a timeout."""


class InvalidRequest(RedoAPIError):
    """Redo refused what was sent (400, 409, 422)."""


class AuthenticationError(RedoAPIError):
    """The API secret is missing, wrong, or lacks the ``webhooks_*`` scope."""


class NotFound(RedoAPIError):
    """No such store or webhook."""


class RateLimited(RedoAPIError):
    """Still 429 after the retries."""


class ServerError(RedoAPIError):
    """Still 5xx after the retries."""


def error_for(status: int, problem: dict[str, Any], what: str) -> RedoAPIError:
    """The exception for an HTTP error ``status`` with a parsed problem document."""
    cls: type[RedoAPIError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = InvalidRequest
    title = _text(problem.get("title"))
    detail = _text(problem.get("detail"))
    message = f"{what}: HTTP {status}"
    if title:
        message += f" {title}"
    if detail:
        message += f": {detail}"
    return cls(message, status=status, title=title, detail=detail, problem=problem)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
