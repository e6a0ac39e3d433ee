"""An app for the bulkhead test: a sync handler that blocks, and a fast one beside it."""

from __future__ import annotations

import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


def _client() -> redis.Redis:
    return redis.Redis.from_url(hooks.settings.redis_url)


@hooks.on("return", name="bulk.stuck")
def stuck(event: ReturnEvent) -> None:
    """Blocks its thread until ``bulk:release`` exists (20 s at most)."""
    client = _client()
    give_up = time.monotonic() + 20
    while not client.exists("bulk:release") and time.monotonic() < give_up:
        time.sleep(0.05)
    client.rpush("bulk:stuck", event.return_id)


@hooks.on("return", name="bulk.fast")
def fast(event: ReturnEvent) -> None:
    """Records the event at once."""
    _client().rpush("bulk:fast", event.return_id)
