"""A fake of Redo's webhook-subscription API, in memory, from the spec's paths.

Implements ``/stores/{storeId}/webhooks`` (GET, POST upsert by ``externalId``),
``/webhooks/{webhookId}`` (GET, PUT, DELETE) and ``/webhooks/{id}/replay``
with bearer auth and problem+json errors. ``fail_next`` scripts faults (429
with ``Retry-After``, 5xx) for the following requests; ``requests`` records
what arrived.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_SECRET = "fake-redo-api-secret"
TOPICS = {"return"}
KINDS = {"redo", "loop"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str) -> Response:
    return JSONResponse(
        {"type": "about:blank", "title": title, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class FakeRedo:
    """State and behaviour of the fake API."""

    api_secret: str = API_SECRET
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    stores: dict[str, str] = field(default_factory=dict)  # webhook id -> store id
    replays: list[tuple[str, str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)

    def fail_next(self, status: int, times: int = 1, **headers: str) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``)."""
        for _ in range(times):
            self.faults.append((status, {k.replace("_", "-"): v for k, v in headers.items()}))

    def app(self) -> Starlette:
        """The Starlette app serving this fake."""
        return Starlette(
            routes=[
                Route("/stores/{store_id}/webhooks", self._store_hooks, methods=["GET", "POST"]),
                Route("/webhooks/{webhook_id}", self._hook, methods=["GET", "PUT", "DELETE"]),
                Route("/webhooks/{webhook_id}/replay", self._replay, methods=["POST"]),
            ]
        )

    def _gate(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path))
        if self.faults:
            status, headers = self.faults.popleft()
            response = _problem(status, "Injected fault", f"scripted {status}")
            response.headers.update(headers)
            raise _Refused(response)
        if request.headers.get("authorization") != f"Bearer {self.api_secret}":
            raise _Refused(_problem(401, "Unauthorized", "invalid API secret"))

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _Refused(_problem(400, "Bad Request", "body is not JSON")) from None
        if not isinstance(body, dict):
            raise _Refused(_problem(400, "Bad Request", "body is not an object"))
        return body

    def _webhook_input(self, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        hook = body.get("webhook")
        if not isinstance(hook, dict):
            raise _Refused(_problem(400, "Bad Request", "webhook is required"))
        callback = hook.get("callback")
        if not isinstance(callback, dict) or not isinstance(callback.get("url"), str):
            raise _Refused(_problem(400, "Bad Request", "webhook.callback.url is required"))
        if not callback["url"].startswith("https://"):
            raise _Refused(_problem(400, "Bad Request", "webhook.callback.url must be https"))
        auth = callback.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise _Refused(_problem(400, "Bad Request", "webhook.callback.auth is invalid"))
        if create and hook.get("topic") not in TOPICS:
            raise _Refused(_problem(422, "Unprocessable Entity", "webhook.topic is invalid"))
        if create and hook.get("kind", "redo") not in KINDS:
            raise _Refused(_problem(422, "Unprocessable Entity", "webhook.kind is invalid"))
        return hook

    async def _store_hooks(self, request: Request) -> Response:
        try:
            self._gate(request)
            store = request.path_params["store_id"]
            if request.method == "GET":
                mine = [h for i, h in self.webhooks.items() if self.stores[i] == store]
                return JSONResponse({"webhooks": mine})
            hook = self._webhook_input(await self._body(request), create=True)
        except _Refused as refused:
            return refused.response
        external = hook.get("externalId")
        for webhook_id, existing in self.webhooks.items():
            if (
                external is not None
                and self.stores[webhook_id] == store
                and existing.get("externalId") == external
            ):
                existing["callback"] = {
                    "url": hook["callback"]["url"],
                    "auth": hook["callback"].get("auth"),
                }
                existing["updatedAt"] = _now()
                return JSONResponse({"webhook": existing}, status_code=200)
        webhook_id = secrets.token_hex(12)
        now = _now()
        self.webhooks[webhook_id] = {
            "id": webhook_id,
            "callback": {"url": hook["callback"]["url"], "auth": hook["callback"].get("auth")},
            "topic": hook["topic"],
            "kind": hook.get("kind", "redo"),
            "externalId": external,
            "createdAt": now,
            "updatedAt": now,
        }
        self.stores[webhook_id] = store
        return JSONResponse({"webhook": self.webhooks[webhook_id]}, status_code=201)

    def _find(self, request: Request) -> tuple[str, dict[str, Any]]:
        webhook_id = request.path_params["webhook_id"]
        if webhook_id not in self.webhooks:
            raise _Refused(_problem(404, "Not Found", f"no webhook {webhook_id}"))
        return webhook_id, self.webhooks[webhook_id]

    async def _hook(self, request: Request) -> Response:
        try:
            self._gate(request)
            webhook_id, existing = self._find(request)
            if request.method == "GET":
                return JSONResponse({"webhook": existing})
            if request.method == "DELETE":
                del self.webhooks[webhook_id]
                del self.stores[webhook_id]
                return Response(status_code=204)
            hook = self._webhook_input(await self._body(request), create=False)
        except _Refused as refused:
            return refused.response
        existing["callback"] = {
            "url": hook["callback"]["url"],
            "auth": hook["callback"].get("auth"),
        }
        if "externalId" in hook:
            existing["externalId"] = hook["externalId"]
        existing["updatedAt"] = _now()
        return Response(status_code=204)

    async def _replay(self, request: Request) -> Response:
        try:
            self._gate(request)
            webhook_id, _ = self._find(request)
            start = (await self._body(request)).get("start")
            if not isinstance(start, str):
                raise _Refused(_problem(400, "Bad Request", "start is required"))
            try:
                datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                raise _Refused(_problem(400, "Bad Request", "start is not a date-time")) from None
        except _Refused as refused:
            return refused.response
        self.replays.append((webhook_id, start))
        return Response(status_code=202)

    def token_of(self, webhook_id: str) -> str | None:
        """The bearer token Redo would send for ``webhook_id``."""
        auth = self.webhooks[webhook_id]["callback"].get("auth") or {}
        token = (auth.get("bearer") or {}).get("token")
        return token if isinstance(token, str) else None
