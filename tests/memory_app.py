"""An app for the memory-pressure test: one handler that counts what it ran."""

from __future__ import annotations

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


_client: redis.Redis | None = None


@hooks.on("return", name="memory.counter")
def count(event: ReturnEvent) -> None:
    """Adds the event's key to the set of events handled.

    One client for the process: a client per call left a Redis connection
    (and its buffers, which count as Redis memory) open per event until
    garbage collection, eating the very room the test checks is kept.
    """
    global _client
    if _client is None:
        _client = redis.Redis.from_url(hooks.settings.redis_url)
    _client.sadd("memory:handled", event.key)
