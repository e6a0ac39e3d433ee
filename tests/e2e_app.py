"""The app the end-to-end tests run in real server and worker processes.

Each handler sleeps a random few milliseconds and appends the event's ``seq``
to a Redis list per (handler, return), which the tests read back.
"""

from __future__ import annotations

import random
import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()
_client: redis.Redis | None = None


def _record(handler: str, event: ReturnEvent) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(hooks.settings.redis_url)
    time.sleep(random.uniform(0.001, 0.005))
    _client.rpush(f"e2e:{handler}:{event.return_id}", int(event.raw["seq"]))


@hooks.on("return", name="e2e.first")
def first(event: ReturnEvent) -> None:
    """Records every event."""
    _record("first", event)


@hooks.on("return.created", "return.updated", name="e2e.second")
async def second(event: ReturnEvent) -> None:
    """Records created and updated events (async)."""
    _record("second", event)
