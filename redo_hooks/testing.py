"""Helpers for testing code that uses redo-hooks (ours and our users').

* :class:`RedisServer` — a private, real ``redis-server`` on a free port.
* :func:`sample_event` — a realistic return event (the spec's example) with
  fresh ids and timestamps, and any overrides.
* :class:`HookTester` — post events through the app, run what they queued
  in this process, see which handler ran on what, raise on a failed handler.
* :func:`deliver` and :func:`drain` — the same without HTTP: store and route
  an event as the receiver would; run every queued job until none is left,
  raising if an event was dead-lettered.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from types import TracebackType
from typing import Any, Unpack

import orjson

from .dev.redis_server import RedisServer
from .dispatch.lanes import bind
from .dispatch.worker import build, drain_burst
from .errors import RedoHooksError, deprecated
from .hooks import RedoHooks
from .models import ReturnEvent, event_kind
from .receiver.auth import first_token
from .receiver.body import parse_body
from .settings import SettingsOverrides
from .store import lua
from .store.connections import redis_client
from .store.ingest import IngestPlan, Routed, outcome, read_reply
from .store.keys import Keys


class DeadLettered(RedoHooksError):
    """A handler exhausted its retries during :func:`drain`."""


def sample_event(
    name: str = "return.created",
    *,
    return_id: str | None = None,
    status: str | None = None,
    return_: dict[str, Any] | None = None,
    subject: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A return event body as Redo sends it (the spec's example), with a fresh return id and times.

    ``name`` is the event's name as handlers subscribe to it
    (``"return.created"``, ``"return.updated"``, ``"return.backfill"``; the
    body's ``type`` is then ``"created"``…); any other name raises
    ``ConfigurationError`` listing these. ``return_id`` and ``status`` set
    ``return.id`` and ``return.status`` (any status: a test may need one Redo
    adds later);
    ``return_`` is merged into ``return`` (nested dicts merged, other values
    replaced), e.g. ``return_={"totals": {"refund": None}}``; ``overrides``
    replace top-level fields (``merchantName="Shop"``). ``subject`` is the
    deprecated 0.2 name of ``return_id``.
    """
    if subject is not None:
        deprecated("sample_event(subject=...)", "sample_event(return_id=...)")
        return_id = subject
    body: dict[str, Any] = copy.deepcopy(_example())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body["type"] = event_kind(name).value
    body["at"] = now
    body["return"]["id"] = return_id or uuid.uuid4().hex[:24]
    body["return"]["updatedAt"] = now
    if status is not None:
        body["return"]["status"] = status
    if return_:
        _merge(body["return"], return_)
    body.update(overrides)
    return body


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            _merge(target[name], value)
        else:
            target[name] = copy.deepcopy(value)


def sample_body(name: str = "return.created", **kwargs: Any) -> bytes:
    """:func:`sample_event` as JSON bytes."""
    return orjson.dumps(sample_event(name, **kwargs))


_EXAMPLE: dict[str, Any] | None = None


def _example() -> dict[str, Any]:
    global _EXAMPLE
    if _EXAMPLE is None:
        text = (files("redo_hooks") / "data" / "return-event.json").read_bytes()
        _EXAMPLE = orjson.loads(text)
    return _EXAMPLE


def deliver(hooks: RedoHooks, body: bytes | dict[str, Any], *, store: str | None = None) -> bool:
    """Store and route one event as the receiver would, without HTTP.

    Runs the same parsing and the same atomic ingest script; returns ``True``
    if the event was new, ``False`` if it was a duplicate. Raises the
    receiver's ``RejectedRequest`` errors for bodies it would refuse.
    ``store``: as if it came with that store's secret (``event.store``).
    """
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    incoming = parse_body(raw, max_depth=hooks.settings.max_json_depth, store=store)
    routed = Routed(incoming, [h.name for h in hooks.registry.for_type(incoming.type)])
    settings = hooks.settings
    plan = IngestPlan(settings, Keys(settings.key_prefix))
    keys, args = plan.build([routed])
    with redis_client(settings.redis_url) as client:
        script = client.register_script(lua.source("ingest"))
        (result,), _yielded = read_reply(script(keys=keys, args=args))
    return outcome(result, settings)


def drain(
    hooks: RedoHooks,
    *,
    raise_on_dead: bool = True,
    timeout: float = 60.0,
    observer: Callable[[str, ReturnEvent, str, BaseException | None], None] | None = None,
    retry_at_once: bool = False,
) -> int:
    """Run every queued job of ``hooks`` in this process until none is left.

    Scheduled retries are run as they come due, or at once with
    ``retry_at_once``, whatever the handler's ``backoff`` (a throttled lane,
    held by ``rate_limit``, is then tried again at once too, and waits again
    if its limit still says so). Returns the number of jobs
    run; raises :class:`DeadLettered` if an event was dead-lettered meanwhile
    (unless ``raise_on_dead`` is false). ``observer`` is called after each
    handler call with (handler name, event, outcome, exception or None).
    """
    worker, runtime = build(hooks)
    runtime.observer = observer
    keys = Keys(hooks.settings.key_prefix)
    dead_before = runtime.connection.zcard(keys.dead_ids)
    try:
        drain_burst(
            worker,
            runtime,
            "WARNING",
            deadline=time.monotonic() + timeout,
            retry_at_once=retry_at_once,
        )
        dead_after = runtime.connection.zcard(keys.dead_ids)
        records = runtime.connection.hvals(keys.dead) if dead_after > dead_before else []
    finally:
        runtime.close()  # (its client's connections too: read what is needed first)
        bind(None)
    if raise_on_dead and dead_after > dead_before:
        errors = [orjson.loads(r)["error"] for r in records][-5:]
        raise DeadLettered(f"{dead_after - dead_before} event(s) dead-lettered: {errors}")
    return int(worker.jobs_run)


@dataclass(frozen=True, slots=True)
class Ran:
    """One handler call :class:`HookTester` saw: ``outcome`` is ok, error or skipped."""

    handler: str
    event: ReturnEvent
    outcome: str
    error: BaseException | None = None


class HandlerFailed(RedoHooksError):
    """A handler raised during :meth:`HookTester.run`; the first exception is the cause."""


class HookTester:
    """Drive a ``RedoHooks`` app in a test: post events through it, run them, see what ran.

    ::

        with RedisServer() as redis, HookTester(RedoHooks(redis_url=redis.url, ...)) as t:
            assert t.post(sample_event("return.created")).status_code == 202
            ran = t.run()              # every queued event, in this process
            assert [r.handler for r in ran] == ["shop.notify_warehouse"]

    ``post`` goes through the real receiver (bearer check, parsing, dedupe,
    the atomic Redis write) in process, with Starlette's ``TestClient``.
    ``run`` drains the queue, retries included and run at once whatever each
    handler's ``backoff`` (:func:`drain` with ``retry_at_once``), and raises
    :class:`HandlerFailed` if any handler call raised, unless
    ``raise_on_error=False``. Keyword arguments
    override settings for the test (``redis_url=``, ``secrets=``, ``backoff=``),
    keeping the rest of the app (handlers, ``@hooks.on_worker``, failure
    callbacks: :meth:`RedoHooks.with_settings`): so your app's own
    ``RedoHooks`` object can be tested as it is.
    """

    def __init__(
        self,
        hooks: RedoHooks,
        *,
        secret: str | None = None,
        **settings: Unpack[SettingsOverrides],
    ) -> None:
        if settings:
            # Your whole app (handlers, on_worker, callbacks) on the test's settings.
            hooks = hooks.with_settings(**settings)
        self.hooks = hooks
        self.secret = secret or first_token(hooks.settings.secrets)
        self.ran: list[Ran] = []
        self._client: Any = None

    def __enter__(self) -> HookTester:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut the in-process receiver down."""
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

    def post(self, event: dict[str, Any] | bytes, *, secret: str | None = None) -> Any:
        """POST ``event`` to the receiver with the bearer ``secret``; the HTTP response."""
        if self._client is None:
            from starlette.testclient import TestClient  # noqa: PLC0415

            self._client = TestClient(self.hooks.asgi()).__enter__()
        body = event if isinstance(event, bytes) else orjson.dumps(event)
        token = self.secret if secret is None else secret
        return self._client.post(
            "/",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def run(self, *, raise_on_error: bool = True, timeout: float = 60.0) -> list[Ran]:
        """Run everything queued; return the handler calls of this run, in order."""
        ran: list[Ran] = []

        def observe(
            handler: str, event: ReturnEvent, outcome: str, error: BaseException | None
        ) -> None:
            ran.append(Ran(handler, event, outcome, error))

        drain(
            self.hooks, raise_on_dead=False, timeout=timeout, observer=observe, retry_at_once=True
        )
        self.ran.extend(ran)
        failed = [r for r in ran if r.error is not None]
        if raise_on_error and failed:
            first = failed[0]
            raise HandlerFailed(
                f"{len(failed)} handler call(s) raised; first: {first.handler} on "
                f"return {first.event.return_id}: {type(first.error).__name__}: {first.error}"
            ) from first.error
        return ran


# Not exported: helpers of redo-hooks' own tests and benchmarks.


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; raise ``TimeoutError`` after ``timeout`` s.

    For tests that wait on another process: wait for a condition, never sleep
    a fixed time.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def env_without_redo_hooks() -> dict[str, str]:
    """A copy of ``os.environ`` without any ``REDO_HOOKS_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REDO_HOOKS_")}


__all__ = [
    "DeadLettered",
    "HandlerFailed",
    "HookTester",
    "Ran",
    "RedisServer",
    "deliver",
    "drain",
    "sample_body",
    "sample_event",
]
