"""An app with a handler that fails while ``dead:broken`` is set in Redis."""

from __future__ import annotations

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="dead.flaky")
def flaky(event: ReturnEvent) -> None:
    """Fails while the bug flag is set; records the event's seq otherwise."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    if client.exists("dead:broken"):
        raise RuntimeError(f"bug while handling event {event.raw['seq']}")
    if client.exists("dead:multiline"):
        raise RuntimeError(f"bug in event {event.raw['seq']}\n  its second line | with a bar")
    client.rpush(f"dead:done:{event.return_id}", int(event.raw["seq"]))


@hooks.on("return", name="dead.parking", park=True)
def parking(event: ReturnEvent) -> None:
    """Like ``flaky``, but its lane parks on an event that exhausts its retries."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    if client.exists("park:broken") and int(event.raw["seq"]) == 1:
        raise RuntimeError("bug while handling event 1")
    client.rpush(f"park:done:{event.return_id}", int(event.raw["seq"]))
