"""The app the chaos run uses: one handler that records each run, and sometimes holds the GIL."""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import signal
import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()
_client: redis.Redis | None = None

#: Events whose seq is this modulo ``CHAOS_GIL_EVERY`` hold the GIL.
GIL_SEQ = 7


@hooks.on("return", name="chaos.recorder")
def record(event: ReturnEvent) -> None:
    """Some work (so kills land mid-handler), then ``seq:time`` at the end of the lane's list.

    Every ``CHAOS_GIL_EVERY``-th event holds the GIL for ``CHAOS_GIL_SECONDS``
    in one C call (``PyDLL`` keeps it): no thread of the process runs
    meanwhile, its heartbeat thread included.
    """
    if event.return_id.startswith("poison"):
        # A poison pill: this return's events kill their process, every time.
        os.kill(os.getpid(), signal.SIGKILL)
    client = _redis()
    seq = int(event.raw["seq"])
    every = int(os.environ.get("CHAOS_GIL_EVERY", "0"))
    if every and seq % every == GIL_SEQ:
        ctypes.PyDLL(None).sleep(int(os.environ.get("CHAOS_GIL_SECONDS", "5")))
    else:
        time.sleep(random.uniform(0.001, 0.010))
    client.rpush(f"chaos:{event.return_id}", f"{seq}:{time.time():.3f}")


#: Events whose seq is this modulo ``CHAOS_SLOW_EVERY`` run 3 s in a thread.
SLOW_SEQ = 3


@hooks.on("return", name="chaos.threaded", timeout=1)
async def threaded(event: ReturnEvent) -> None:
    """Work in ``asyncio.to_thread``; every ``CHAOS_SLOW_EVERY``-th event's runs past the timeout.

    Each attempt's thread records ``seq:start:end``: an attempt that began
    before an earlier one's thread ended (of the same return) overlapped it.
    """
    seq = int(event.raw["seq"])
    every = int(os.environ.get("CHAOS_SLOW_EVERY", "0"))
    seconds = 3.0 if every and seq % every == SLOW_SEQ else random.uniform(0.001, 0.005)
    await asyncio.to_thread(_work, event.return_id, seq, seconds)


def _work(subject: str, seq: int, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    _redis().rpush(f"chaos:t:{subject}", f"{seq}:{start:.3f}:{time.time():.3f}")


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(hooks.settings.redis_url)
    return _client
