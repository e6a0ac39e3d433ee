"""An app whose handler kills its own worker process once, mid-event."""

from __future__ import annotations

import os
import signal

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="crash.recorder")
def record(event: ReturnEvent) -> None:
    """Records each event; the first time it sees seq 1, SIGKILLs its worker."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    seq = int(event.raw["seq"])
    if seq == 1 and client.set("crash:done", "1", nx=True):
        os.kill(os.getpid(), signal.SIGKILL)
    client.rpush(f"crash:{event.subject}", seq)
