"""An app for the dashboard's browser tests: one handler fails while ``dash:broken`` is set."""

from __future__ import annotations

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks(retries=0)


@hooks.on("return", name="dash.flaky")
def flaky(event: ReturnEvent) -> None:
    """Fails while the bug flag is set in Redis."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    if client.exists("dash:broken"):
        raise RuntimeError(f"warehouse refused return {event.return_id}")


@hooks.on("return.created", name="dash.steady")
def steady(event: ReturnEvent) -> None:
    """Always succeeds."""
