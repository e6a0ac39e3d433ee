"""Redo's webhook-subscription API, sync (:class:`RedoAPI`) and async (:class:`AsyncRedoAPI`).

::

    with RedoAPI(secret="...") as redo:            # or RedoAPI.from_env()
        hook, created = redo.create_webhook(
            "store-id", "https://hooks.example.com/", token="receiver-secret",
            external_id="redo-hooks:https://hooks.example.com/",
        )
        redo.replay_webhook(hook.id, since)

Every method raises a :class:`~redo_hooks.redo_api.RedoAPIError` subclass
on failure, after the retries :class:`~redo_hooks.redo_api.calls.RetryPolicy`
allows.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from importlib.metadata import version
from types import TracebackType
from typing import Any, NamedTuple, Self

import httpx2

from ..errors import ConfigurationError
from . import calls
from .calls import DEFAULT_API_URL, DEFAULT_TIMEOUT, Call, RetryPolicy
from .models import Callback, Webhook

API_URL_ENV = "REDO_API_URL"
API_SECRET_ENV = "REDO_API_SECRET"  # noqa: S105  (a variable name)


class Written(NamedTuple):
    """What :meth:`RedoAPI.create_webhook` did: the webhook, and whether it is new."""

    webhook: Webhook
    created: bool


def _from_env(environ: Mapping[str, str] | None) -> tuple[str, str]:
    env = os.environ if environ is None else environ
    return env.get(API_SECRET_ENV, ""), env.get(API_URL_ENV) or DEFAULT_API_URL


def _headers(secret: str) -> dict[str, str]:
    if not secret:
        raise ConfigurationError(
            f"no Redo API secret: set {API_SECRET_ENV} or pass secret=... "
            "(an API secret with the webhooks_read/webhooks_write scopes)"
        )
    return {
        "Authorization": f"Bearer {secret}",
        "Accept": "application/json, application/problem+json",
        "User-Agent": f"redo-hooks/{version('redo-hooks')}",
    }


class _Base:
    """What both clients share: the calls, and reading their answers."""

    policy: RetryPolicy

    @staticmethod
    def _create(
        store_id: str,
        url: str,
        *,
        token: str,
        external_id: str | None,
        backfill: bool,
        topic: str,
    ) -> Call:
        return calls.create_webhook(
            store_id,
            Callback.bearer(url, token),
            external_id=external_id,
            backfill=backfill,
            topic=topic,
        )

    @staticmethod
    def _written(response: httpx2.Response, call: Call) -> Written:
        return Written(calls.read_webhook(response, call.what), response.status_code == 201)


class RedoAPI(_Base):
    """Synchronous client. ``transport`` is for tests (an ``httpx2.MockTransport``…)."""

    def __init__(
        self,
        secret: str,
        *,
        base_url: str = DEFAULT_API_URL,
        timeout: httpx2.Timeout | float = DEFAULT_TIMEOUT,
        policy: RetryPolicy | None = None,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._http = httpx2.Client(
            base_url=base_url, headers=_headers(secret), timeout=timeout, transport=transport
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """A client from ``REDO_API_SECRET`` and ``REDO_API_URL`` (default the v2.2 API)."""
        secret, base_url = _from_env(environ)
        return cls(secret, base_url=base_url, **kwargs)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, call: Call) -> httpx2.Response:
        attempt = 0
        while True:
            try:
                outcome: httpx2.Response | httpx2.TransportError = self._http.request(
                    call.method, call.path, json=call.json
                )
            except httpx2.TransportError as exc:
                outcome = exc
            step = self.policy.next_step(call, attempt, outcome)
            if isinstance(step, httpx2.Response):
                return step
            if isinstance(step, Exception):
                raise step
            self._sleep(step)
            attempt += 1

    def list_webhooks(self, store_id: str) -> list[Webhook]:
        """Every webhook subscription of a store."""
        call = calls.list_webhooks(store_id)
        return calls.read_webhooks(self._send(call), call.what)

    def create_webhook(
        self,
        store_id: str,
        url: str,
        *,
        token: str,
        external_id: str | None = None,
        backfill: bool = False,
        topic: str = "return",
    ) -> Written:
        """Subscribe ``url`` (sent ``Authorization: Bearer <token>``) to a store's events.

        With ``external_id`` this is an upsert: the store's webhook with that
        id is updated instead of a second one created. ``backfill`` asks Redo
        for ``backfill`` events of the returns that already exist.
        """
        call = self._create(
            store_id, url, token=token, external_id=external_id, backfill=backfill, topic=topic
        )
        return self._written(self._send(call), call)

    def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook subscription."""
        call = calls.get_webhook(webhook_id)
        return calls.read_webhook(self._send(call), call.what)

    def update_webhook(
        self, webhook_id: str, url: str, *, token: str, external_id: str | None = None
    ) -> None:
        """Point a webhook at ``url`` with bearer ``token``."""
        self._send(calls.update_webhook(webhook_id, Callback.bearer(url, token), external_id))

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook subscription."""
        self._send(calls.delete_webhook(webhook_id))

    def replay_webhook(self, webhook_id: str, start: datetime) -> None:
        """Ask Redo to send again every event since ``start`` (timezone-aware)."""
        self._send(calls.replay_webhook(webhook_id, start))


class AsyncRedoAPI(_Base):
    """Asynchronous client, the same methods as :class:`RedoAPI`, awaited."""

    def __init__(
        self,
        secret: str,
        *,
        base_url: str = DEFAULT_API_URL,
        timeout: httpx2.Timeout | float = DEFAULT_TIMEOUT,
        policy: RetryPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._http = httpx2.AsyncClient(
            base_url=base_url, headers=_headers(secret), timeout=timeout, transport=transport
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """A client from ``REDO_API_SECRET`` and ``REDO_API_URL``."""
        secret, base_url = _from_env(environ)
        return cls(secret, base_url=base_url, **kwargs)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, call: Call) -> httpx2.Response:
        attempt = 0
        while True:
            try:
                outcome: httpx2.Response | httpx2.TransportError = await self._http.request(
                    call.method, call.path, json=call.json
                )
            except httpx2.TransportError as exc:
                outcome = exc
            step = self.policy.next_step(call, attempt, outcome)
            if isinstance(step, httpx2.Response):
                return step
            if isinstance(step, Exception):
                raise step
            await self._sleep(step)
            attempt += 1

    async def list_webhooks(self, store_id: str) -> list[Webhook]:
        """Every webhook subscription of a store."""
        call = calls.list_webhooks(store_id)
        return calls.read_webhooks(await self._send(call), call.what)

    async def create_webhook(
        self,
        store_id: str,
        url: str,
        *,
        token: str,
        external_id: str | None = None,
        backfill: bool = False,
        topic: str = "return",
    ) -> Written:
        """See :meth:`RedoAPI.create_webhook`."""
        call = self._create(
            store_id, url, token=token, external_id=external_id, backfill=backfill, topic=topic
        )
        return self._written(await self._send(call), call)

    async def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook subscription."""
        call = calls.get_webhook(webhook_id)
        return calls.read_webhook(await self._send(call), call.what)

    async def update_webhook(
        self, webhook_id: str, url: str, *, token: str, external_id: str | None = None
    ) -> None:
        """Point a webhook at ``url`` with bearer ``token``."""
        await self._send(calls.update_webhook(webhook_id, Callback.bearer(url, token), external_id))

    async def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook subscription."""
        await self._send(calls.delete_webhook(webhook_id))

    async def replay_webhook(self, webhook_id: str, start: datetime) -> None:
        """Ask Redo to send again every event since ``start`` (timezone-aware)."""
        await self._send(calls.replay_webhook(webhook_id, start))
