"""The sans-I/O half of the Redo API client: what to send, when to retry, how to read.

Both clients (:class:`~redo_hooks.redo_api.RedoAPI` and
:class:`~redo_hooks.redo_api.AsyncRedoAPI`) build a :class:`Call` here, send
it with their own httpx2 client, and ask :meth:`RetryPolicy.next_step` what to
do with the outcome: return it, raise, or sleep and send again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx2
from pydantic import ValidationError

from ..backoff import exponential
from .errors import APIUnreachable, RateLimited, RedoAPIError, error_for
from .models import Callback, Webhook

DEFAULT_API_URL = "https://api.getredo.com/v2.2"
DEFAULT_TIMEOUT = httpx2.Timeout(15.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class Call:
    """One API request. ``idempotent`` calls are retried after a 5xx or a timeout."""

    method: str
    path: str
    what: str
    json: dict[str, Any] | None = None
    idempotent: bool = True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before sending a call again.

    429 is always retried (Redo refused before doing anything), honouring
    ``Retry-After`` up to ``max_wait`` seconds; a longer ``Retry-After``
    raises :class:`RateLimited` at once rather than blocking. 5xx and
    timeouts are retried for idempotent calls only: a create without an
    ``externalId`` that timed out may have happened, and sending it again
    could subscribe twice. A refused connection is always retried.
    """

    retries: int = 3
    backoff: float = 0.5
    cap: float = 8.0
    max_wait: float = 60.0

    def next_step(
        self, call: Call, attempt: int, outcome: httpx2.Response | httpx2.TransportError
    ) -> httpx2.Response | RedoAPIError | float:
        """The response to return, the error to raise, or seconds to wait and retry."""
        if isinstance(outcome, httpx2.TransportError):
            return self._after_transport_error(call, attempt, outcome)
        if outcome.is_success:
            return outcome
        error = error_for(outcome.status_code, _problem(outcome), call.what)
        retryable = outcome.status_code == 429 or (outcome.status_code >= 500 and call.idempotent)
        if not retryable or attempt >= self.retries:
            return error
        wait = retry_after(outcome.headers.get("retry-after"))
        if wait is None:
            return self._backoff(attempt)
        if wait > self.max_wait:
            return RateLimited(
                f"{error} (Retry-After {wait:.0f} s is over {self.max_wait:.0f} s)",
                status=error.status,
                title=error.title,
                detail=error.detail,
                problem=error.problem,
            )
        return wait

    def _after_transport_error(
        self, call: Call, attempt: int, outcome: httpx2.TransportError
    ) -> RedoAPIError | float:
        error = APIUnreachable(f"{call.what}: no answer from Redo's API ({type(outcome).__name__})")
        sent = not isinstance(outcome, httpx2.ConnectError)
        if attempt >= self.retries or (sent and not call.idempotent):
            return error
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return exponential(attempt + 1, self.backoff, self.cap)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _problem(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def list_webhooks(store_id: str) -> Call:
    """``GET /stores/{storeId}/webhooks``."""
    return Call("GET", f"stores/{_segment(store_id)}/webhooks", f"list webhooks of {store_id}")


def create_webhook(
    store_id: str,
    callback: Callback,
    *,
    external_id: str | None,
    backfill: bool,
    topic: str,
) -> Call:
    """``POST /stores/{storeId}/webhooks``: create, or update the one with ``external_id``."""
    webhook: dict[str, Any] = {"callback": callback.to_api(), "topic": topic}
    if external_id is not None:
        webhook["externalId"] = external_id
    if backfill:
        webhook["backfill"] = True
    return Call(
        "POST",
        f"stores/{_segment(store_id)}/webhooks",
        f"create webhook for {store_id}",
        json={"webhook": webhook},
        # With an externalId the call is an upsert: sending it twice is harmless.
        idempotent=external_id is not None,
    )


def get_webhook(webhook_id: str) -> Call:
    """``GET /webhooks/{webhookId}``."""
    return Call("GET", f"webhooks/{_segment(webhook_id)}", f"get webhook {webhook_id}")


def update_webhook(webhook_id: str, callback: Callback, external_id: str | None) -> Call:
    """``PUT /webhooks/{webhookId}``."""
    webhook: dict[str, Any] = {"callback": callback.to_api()}
    if external_id is not None:
        webhook["externalId"] = external_id
    return Call(
        "PUT",
        f"webhooks/{_segment(webhook_id)}",
        f"update webhook {webhook_id}",
        json={"webhook": webhook},
    )


def delete_webhook(webhook_id: str) -> Call:
    """``DELETE /webhooks/{webhookId}``."""
    return Call("DELETE", f"webhooks/{_segment(webhook_id)}", f"delete webhook {webhook_id}")


def replay_webhook(webhook_id: str, start: datetime) -> Call:
    """``POST /webhooks/{webhookId}/replay``: send again every event since ``start``."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    stamp = start.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Call(
        "POST",
        f"webhooks/{_segment(webhook_id)}/replay",
        f"replay webhook {webhook_id}",
        json={"start": stamp},
    )


def read_webhook(response: httpx2.Response, what: str) -> Webhook:
    """The ``webhook`` of a response body."""
    body = _json(response, what)
    return _webhook(body.get("webhook"), what)


def read_webhooks(response: httpx2.Response, what: str) -> list[Webhook]:
    """The ``webhooks`` list of a response body."""
    items = _json(response, what).get("webhooks")
    if not isinstance(items, list):
        raise RedoAPIError(
            f"{what}: the answer has no 'webhooks' list", status=response.status_code
        )
    return [_webhook(item, what) for item in items]


def _json(response: httpx2.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise RedoAPIError(f"{what}: the answer is not JSON", status=response.status_code) from None
    if not isinstance(body, dict):
        raise RedoAPIError(f"{what}: the answer is not an object", status=response.status_code)
    return body


def _webhook(value: Any, what: str) -> Webhook:
    try:
        return Webhook.model_validate(value)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "webhook" for e in exc.errors())
        raise RedoAPIError(f"{what}: unexpected webhook in the answer ({fields})") from None
