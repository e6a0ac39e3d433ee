"""The apps the benchmarks run, settings from the environment: no-op and I/O-bound handlers."""

from __future__ import annotations

import asyncio
import time

from redis import Redis

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.models import decode_event

hooks = RedoHooks()


@hooks.on("return", name="bench.noop")
def noop(event: ReturnEvent) -> None:
    """Does nothing: the benchmarks measure the framework."""


def noop_job(body: bytes) -> None:
    """The stock-RQ baseline's job: decode the event as a worker does, then nothing."""
    decode_event(body)


#: 50 ms of I/O per event, awaited: what a handler calling an API does.
io_async = RedoHooks()


@io_async.on("return", name="bench.io")
async def awaits_io(event: ReturnEvent) -> None:
    """Awaits a 50 ms call."""
    await asyncio.sleep(0.05)


#: The same 50 ms, blocking: a handler using a sync client.
io_sync = RedoHooks()


@io_sync.on("return", name="bench.io")
def blocks_on_io(event: ReturnEvent) -> None:
    """Blocks 50 ms, as a sync HTTP or database call does."""
    time.sleep(0.05)


#: 6 s of awaited I/O per event: the sizing row of ``benchmarks.dispatch --sizing``.
io_slow = RedoHooks()


@io_slow.on("return", name="bench.slow")
async def awaits_long(event: ReturnEvent) -> None:
    """Awaits a 6 s call."""
    await asyncio.sleep(6)


#: Holds each event 5 s: events in flight, counted in ``bench:in_flight``.
held = RedoHooks()


@held.on("return", name="bench.held")
async def hold(event: ReturnEvent) -> None:
    """Counts itself in, waits 5 s (an awaited call), counts itself out."""
    client = _client(held)
    client.incr("bench:in_flight")
    await asyncio.sleep(5)
    client.decr("bench:in_flight")


_clients: dict[int, Redis] = {}


def _client(app: RedoHooks) -> Redis:
    if id(app) not in _clients:
        _clients[id(app)] = Redis.from_url(app.settings.redis_url)
    return _clients[id(app)]
