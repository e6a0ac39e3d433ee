"""An app whose handler takes a while, for shutdown tests."""

from __future__ import annotations

import os
import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="slow.recorder")
def record(event: ReturnEvent) -> None:
    """Marks the start, works for a second, then records the event."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    client.rpush(f"started:{event.subject}", int(event.raw["seq"]))
    time.sleep(float(os.environ.get("SLOW_SECONDS", "1")))
    client.rpush(f"done:{event.subject}", int(event.raw["seq"]))
