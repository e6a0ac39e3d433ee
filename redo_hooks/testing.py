"""Helpers for testing code that uses redo-hooks (ours and our users').

* :class:`RedisServer` — a private, real ``redis-server`` on a free port.
* :func:`sample_event` — a realistic return event (the spec's example) with
  fresh ids and timestamps, and any overrides.
* :func:`drain` — run everything queued for a ``RedoHooks`` app in this
  process until nothing is left, raising if a handler's event was
  dead-lettered.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import orjson
from redis import Redis

from . import jobs, scripts
from .errors import RedoHooksError
from .hooks import RedoHooks
from .keys import Keys
from .queue import IngestPlan, Routed
from .receive import parse_body
from .redis_server import RedisServer
from .worker import build, drain_burst


class DeadLettered(RedoHooksError):
    """A handler exhausted its retries during :func:`drain`."""


def sample_event(
    type: str = "created",
    *,
    subject: str | None = None,
    status: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A return event body as Redo sends it, with a fresh return id and times.

    ``overrides`` replace top-level fields; ``subject`` and ``status`` set
    ``return.id`` and ``return.status``.
    """
    body: dict[str, Any] = copy.deepcopy(_example())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body["type"] = type
    body["at"] = now
    body["return"]["id"] = subject or uuid.uuid4().hex[:24]
    body["return"]["updatedAt"] = now
    if status is not None:
        body["return"]["status"] = status
    body.update(overrides)
    return body


def sample_body(type: str = "created", **kwargs: Any) -> bytes:
    """:func:`sample_event` as JSON bytes."""
    return orjson.dumps(sample_event(type, **kwargs))


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
    routed = Routed(incoming, hooks.registry.for_type(incoming.type))
    settings = hooks.settings
    plan = IngestPlan(settings, Keys(settings.key_prefix))
    keys, args = plan.build([routed])
    with Redis.from_url(settings.redis_url) as client:
        script = client.register_script(scripts.source("ingest"))
        (result,) = script(keys=keys, args=args)
    return int(result) == 1


def drain(hooks: RedoHooks, *, raise_on_dead: bool = True, timeout: float = 60.0) -> int:
    """Run every queued job of ``hooks`` in this process until none is left.

    Scheduled retries are run as they come due. Returns the number of jobs
    run; raises :class:`DeadLettered` if an event was dead-lettered meanwhile
    (unless ``raise_on_dead`` is false).
    """
    worker, runtime = build(hooks)
    keys = Keys(hooks.settings.key_prefix)
    dead_before = runtime.connection.zcard(keys.dead_ids)
    try:
        drain_burst(worker, runtime, "WARNING", deadline=time.monotonic() + timeout)
    finally:
        runtime.loop.close()
        jobs.bind(None)
    dead_after = runtime.connection.zcard(keys.dead_ids)
    if raise_on_dead and dead_after > dead_before:
        records = runtime.connection.hvals(keys.dead)
        errors = [orjson.loads(r)["error"] for r in records][-5:]
        raise DeadLettered(f"{dead_after - dead_before} event(s) dead-lettered: {errors}")
    return worker.jobs_run


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
    "RedisServer",
    "deliver",
    "drain",
    "env_without_redo_hooks",
    "sample_body",
    "sample_event",
    "wait_for",
]
