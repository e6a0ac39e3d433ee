"""An app for the quarantine test: one return's events kill their process, every time."""

from __future__ import annotations

import os
import signal
import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()
_clients: list[redis.Redis] = []


def _client() -> redis.Redis:
    if not _clients:
        _clients.append(redis.Redis.from_url(hooks.settings.redis_url))
    return _clients[0]


@hooks.on("return", name="poison.h")
def handle(event: ReturnEvent) -> None:
    """A ``poison-*`` return's event SIGKILLs this process; any other takes ~10 ms."""
    client = _client()
    run = f"{event.return_id}:{event.raw['seq']}"
    seconds, micros = client.time()
    with client.pipeline(transaction=False) as pipe:
        pipe.hincrby("poison:runs", run, 1)
        pipe.hsetnx("poison:first_run", run, seconds + micros / 1e6)
        pipe.execute()
    if event.return_id.startswith("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    client.sadd("poison:done", run)
