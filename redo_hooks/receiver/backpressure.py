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
evict stored events. :class:`MemoryGuard` warns at start-up otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ..store.memory import Memory, check_policy

log = structlog.get_logger("redo_hooks.receiver.backpressure")


class MemoryGuard:
    """Reads Redis' memory settings once, at start-up, to warn about an evicting policy."""

    def __init__(self, redis: Callable[[], AsyncRedis], *, timeout: float = 2.0) -> None:
        self._redis = redis
        self.timeout = timeout
        self.memory: Memory | None = None

    async def refresh(self) -> None:
        """Read ``INFO memory`` and check the policy (errors leave the reading as it was)."""
        try:
            async with asyncio.timeout(self.timeout):
                info = await self._redis().info("memory")
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("memory_check_failed", error=type(exc).__name__)
            return
        self.memory = Memory.from_info(info)
        check_policy(self.memory, "receiver")
