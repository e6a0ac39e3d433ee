"""Backpressure: refuse (503) before Redis is full, instead of failing writes mid-way.

Two limits, each checked inside the ingest script itself, atomically with
the write (``store/lua/ingest.lua``), so no burst can slip past them between
two readings: an event over either is answered 503 with ``Retry-After`` and
nothing of it is written, and Redo retries later.

* **Memory**: Redis' ``used_memory`` (read by the script, from Redis, for
  every batch) plus what the event adds, over ``memory_high_water`` of
  ``maxmemory``. The room above the mark is the workers': a Redis at
  ``maxmemory`` with ``noeviction`` refuses RQ's own bookkeeping, and
  nothing could drain. Before refusing, events kept only for replay (handled
  by every handler, ``retention``) yield, oldest first, counted in
  ``redo_hooks_retention_yielded_total`` and logged: retained data never
  starves intake, which resumes by itself as workers drain the backlog.
* **Backlog**: more than ``max_waiting_events`` events waiting in lanes.

Redis must run with ``maxmemory-policy noeviction``: any other policy may
evict stored events. :func:`check_eviction_policy` warns at start-up otherwise.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ..logs import get_logger
from ..store.memory import Memory, check_policy

log = get_logger("redo_hooks.receiver.backpressure")


async def check_eviction_policy(redis: AsyncRedis, timeout: float) -> None:
    """At start-up: warn unless Redis refuses writes rather than evicting (errors: no warning)."""
    try:
        async with asyncio.timeout(timeout):
            info = await redis.info("memory")
    except (RedisError, OSError, TimeoutError) as exc:
        log.debug("memory_check_failed", error=type(exc).__name__)
        return
    check_policy(Memory.from_info(info), "receiver")
