"""Every exception redo-hooks raises, under one base class.

::

    RedoHooksError
    ├── ConfigurationError        bad settings, handler or app string (at definition time)
    ├── RejectedRequest           a request the receiver refuses; carries status and problem
    │   ├── Unauthorized          401  missing or wrong bearer secret
    │   ├── RequestTimeout        408  the body did not arrive within ``body_timeout``
    │   ├── PayloadTooLarge       413  body over ``max_body_bytes``
    │   ├── MalformedBody         400  not strict JSON, not an object, too deep
    │   └── UnprocessableEvent    422  JSON, but without what routing needs
    ├── StoreUnavailable          503  Redis unreachable, too slow, nearly full, or the
    │                                  backlog over its ceiling: the sender must retry
    ├── Retry                     raised by a handler: run this event again after ``after`` s
    └── GiveUp                    raised by a handler: dead-letter this event now

``problem_for`` is the one place that maps an error to an HTTP status and an
RFC 9457 problem document. ``deprecated`` is how an old name says so: a
``DeprecationWarning`` for one release (the CHANGELOG lists them), then gone.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

#: The release that removes the names deprecated in this one.
REMOVED_IN = "0.4.0"


class RedoHooksError(Exception):
    """Base of every redo-hooks exception."""


class ConfigurationError(RedoHooksError):
    """Settings, a handler registration or an import string is wrong."""


class RejectedRequest(RedoHooksError):
    """A webhook request the receiver refuses. ``reason`` is a stable slug."""

    status: int = 400
    title: str = "Bad Request"
    reason: str = "rejected"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason


class Unauthorized(RejectedRequest):
    """Missing, malformed or unknown bearer secret."""

    status = 401
    title = "Unauthorized"
    reason = "unauthorized"


class UnknownPath(RejectedRequest):
    """Nothing of the receiver's is at that path (events go to ``POST /``)."""

    status = 404
    title = "Not Found"
    reason = "not_found"


class WrongMethod(RejectedRequest):
    """The path exists, but not for that method."""

    status = 405
    title = "Method Not Allowed"
    reason = "method_not_allowed"


class RequestTimeout(RejectedRequest):
    """The body did not arrive within ``body_timeout``."""

    status = 408
    title = "Request Timeout"
    reason = "body_too_slow"


class PayloadTooLarge(RejectedRequest):
    """The body is larger than ``max_body_bytes``."""

    status = 413
    title = "Content Too Large"
    reason = "too_large"


class MalformedBody(RejectedRequest):
    """The body is not strict RFC 8259 JSON, not an object, or nested too deep."""

    status = 400
    title = "Malformed Body"
    reason = "malformed_json"


class UnprocessableEvent(RejectedRequest):
    """Valid JSON that lacks what routing needs (``type``, ``return.id``)."""

    status = 422
    title = "Unprocessable Event"
    reason = "invalid_event"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class StoreUnavailable(RedoHooksError):
    """Redis could not take the event; nothing was acknowledged."""

    status = 503
    title = "Service Unavailable"
    reason = "store_unavailable"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        if reason is not None:
            self.reason = reason


class Retry(RedoHooksError):
    """Raise in a handler to run the event again after ``after`` seconds.

    For a downstream that said "later" (a 429 with ``Retry-After``, a lock
    held elsewhere). It counts as a failed attempt, so a handler that always
    asks for a retry still ends in the dead letters after its ``retries``.
    """

    def __init__(self, after: float, reason: str = "") -> None:
        if after < 0:
            raise ValueError("after must be seconds >= 0")
        super().__init__(reason or f"retry requested in {after:g} s")
        self.after = float(after)


class GiveUp(RedoHooksError):
    """Raise in a handler to dead-letter the event now, without further attempts.

    For failures no retry can fix (the order was deleted, the data is
    invalid for your system). With ``park=True`` the lane is parked instead.
    """


PROBLEM_BASE = "urn:redo-hooks:problem:"


def problem_for(error: RejectedRequest | StoreUnavailable) -> tuple[int, dict[str, Any]]:
    """The HTTP status and RFC 9457 problem document for a refused request."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + error.reason.replace("_", "-"),
        "title": error.title,
        "status": error.status,
        "detail": str(error),
    }
    if isinstance(error, UnprocessableEvent) and error.errors:
        body["errors"] = error.errors
    return error.status, body


class MissingExtra(ConfigurationError):
    """An optional feature's dependency is not installed: the message names the extra."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs {package}, which is not installed: "
            f"pip install 'redo-hooks[{extra}]' (or add {package} to your requirements)"
        )


def require(module: str, *, feature: str, extra: str, package: str | None = None) -> None:
    """Raise :class:`MissingExtra` unless ``module`` (pip's ``package``) can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(feature, package or module, extra) from None


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new``, pointing at the caller's line."""
    warnings.warn(
        f"{old} is deprecated: use {new} (it goes in redo-hooks {REMOVED_IN})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
