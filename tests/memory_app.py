"""An app for the memory-pressure test: one handler that counts what it ran."""

from __future__ import annotations

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="memory.counter")
def count(event: ReturnEvent) -> None:
    """Adds the event's key to the set of events handled."""
    redis.Redis.from_url(hooks.settings.redis_url).sadd("memory:handled", event.key)
