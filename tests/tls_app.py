"""An app for the TLS test: one handler that records each return it ran, over TLS."""

from __future__ import annotations

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.store.connections import redis_client

hooks = RedoHooks()


@hooks.on("return", name="tls.noop")
def record(event: ReturnEvent) -> None:
    """Appends the return id to ``tls:handled`` (through the app's own rediss:// URL)."""
    with redis_client(hooks.settings.redis_url) as client:
        client.rpush("tls:handled", event.return_id)
