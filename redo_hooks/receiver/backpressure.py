"""Backpressure: refuse (503) before Redis is full, instead of failing writes mid-way.

Two signals, either of which makes the receiver answer 503 with
``Retry-After``, so Redo retries later and nothing half-written or evicted
ever needs cleaning up:

* **Memory**: Redis' ``used_memory`` at or over ``memory_high_water`` of its
  ``maxmemory``. Read from ``INFO memory`` at most once a second (by the
  request that finds the last reading old). The headroom above the mark is what workers need to keep
  acknowledging (and so freeing) events; a Redis at ``maxmemory`` with
  ``noeviction`` would refuse even those.
* **Backlog**: more than ``max_waiting_events`` events waiting in lanes.
  Checked inside the ingest script itself, atomically with the write.

Redis must run with ``maxmemory-policy noeviction``: any other policy may
evict stored events. :func:`check_policy` warns at start-up otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ..errors import StoreUnavailable
from ..store.memory import Memory, check_policy

log = structlog.get_logger("redo_hooks.receiver.backpressure")

#: Seconds between two reads of ``INFO memory``.
REFRESH_INTERVAL = 1.0


class MemoryGuard:
    """The receiver's view of Redis memory, refreshed in the background."""

    def __init__(
        self,
        redis: Callable[[], AsyncRedis],
        high_water: float,
        *,
        interval: float = REFRESH_INTERVAL,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.high_water = high_water
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self.memory: Memory | None = None
        self._checked = -interval
        self._policy_checked = False

    async def refusal(self) -> StoreUnavailable | None:
        """A 503 to answer now, or ``None``.

        When the reading is older than ``interval``, the one request that
        notices refreshes it (one ``INFO`` round trip a second in all);
        requests arriving meanwhile use the previous reading.
        """
        if self._clock() - self._checked >= self.interval:
            await self.refresh()  # marks the reading fresh before it awaits
        memory = self.memory
        if memory is None or memory.fraction is None or memory.fraction < self.high_water:
            return None
        return StoreUnavailable(
            f"Redis memory is at {memory.fraction:.0%} of maxmemory "
            f"(the receiver stops at {self.high_water:.0%}); retry later",
            reason="redis_memory_high",
        )

    async def refresh(self) -> None:
        """Read ``INFO memory`` (errors leave the last reading as it was)."""
        self._checked = self._clock()
        try:
            async with asyncio.timeout(self.timeout):
                info = await self._redis().info("memory")
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("memory_check_failed", error=type(exc).__name__)
            return
        self.memory = Memory.from_info(info)
        if not self._policy_checked:
            self._policy_checked = True
            check_policy(self.memory, "receiver")
