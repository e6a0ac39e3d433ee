"""An app whose handler kills its own worker process once, mid-event."""

from __future__ import annotations

import os
import signal

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="crash.recorder")
def record(event: ReturnEvent) -> None:
    """Records each event; the first time it sees seq 1, SIGKILLs its worker.

    The whole worker, as when its machine is lost: the parent first (which
    would otherwise re-run the job at once), then this process.
    """
    client = redis.Redis.from_url(hooks.settings.redis_url)
    seq = int(event.raw["seq"])
    if seq == 1 and client.set("crash:done", "1", nx=True):
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    client.rpush(f"crash:{event.return_id}", seq)


def dies_alone(event: ReturnEvent) -> None:
    """Records each event; the first time it sees seq 1, SIGKILLs its own process only."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    seq = int(event.raw["seq"])
    if seq == 1 and client.set("crash:alone", "1", nx=True):
        os.kill(os.getpid(), signal.SIGKILL)
    client.rpush(f"crash:{event.return_id}", seq)


#: Only the handler whose process dies without its parent.
alone = RedoHooks()
alone.add(dies_alone, "return", name="crash.alone")
