"""The app the soak run uses: two handlers that record what they ran."""

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
    time.sleep(random.uniform(0.001, 0.010))  # some work, so kills land mid-handler
    _client.rpush(f"soak:{handler}:{event.return_id}", int(event.raw["seq"]))


@hooks.on("return", name="soak.first")
def first(event: ReturnEvent) -> None:
    """Records every event."""
    _record("first", event)


@hooks.on("return.updated", "return.created", name="soak.second")
def second(event: ReturnEvent) -> None:
    """Records created and updated events."""
    _record("second", event)
