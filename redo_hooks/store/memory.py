"""Redis memory as ``INFO memory`` reports it, and the eviction-policy check.

The receiver's backpressure (``receiver/backpressure.py``) and the workers'
start-up read it. Pure, but for the caller's ``INFO`` reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..logs import get_logger

log = get_logger("redo_hooks.store.memory")


@dataclass(frozen=True, slots=True)
class Memory:
    """What ``INFO memory`` says about the limits that matter."""

    used: int
    maxmemory: int
    policy: str

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Memory:
        """From a parsed ``INFO memory`` reply."""
        return cls(
            used=int(info.get("used_memory", 0)),
            maxmemory=int(info.get("maxmemory", 0)),
            policy=str(info.get("maxmemory_policy", "unknown")),
        )

    @property
    def fraction(self) -> float | None:
        """``used / maxmemory``; ``None`` without a ``maxmemory``."""
        return self.used / self.maxmemory if self.maxmemory else None


def check_policy(memory: Memory, process: str) -> bool:
    """Warn (once per call) unless Redis refuses writes rather than evicting; ``True`` if ok."""
    if memory.policy == "noeviction":
        return True
    log.warning(
        "redis_may_evict_events",
        process=process,
        maxmemory_policy=memory.policy,
        fix="CONFIG SET maxmemory-policy noeviction (and in redis.conf)",
    )
    return False
