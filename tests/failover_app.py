"""The app of the failover test: records each event's seq per return, through Sentinel too."""

from __future__ import annotations

import redis

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.store.connections import redis_client

hooks = RedoHooks()
_client: redis.Redis | None = None


@hooks.on("return", name="failover.record")
def record(event: ReturnEvent) -> None:
    """Append the event's seq to ``failover:<return>`` (a failing write retries the event)."""
    global _client
    if _client is None:
        _client = redis_client(hooks.settings.redis_url, socket_timeout=2)
    _client.rpush(f"failover:{event.return_id}", int(event.raw["seq"]))
