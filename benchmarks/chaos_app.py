"""The app the chaos run uses: one handler that records each run, and sometimes holds the GIL."""

from __future__ import annotations

import ctypes
import os
import random
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
    global _client
    if _client is None:
        _client = redis.Redis.from_url(hooks.settings.redis_url)
    seq = int(event.raw["seq"])
    every = int(os.environ.get("CHAOS_GIL_EVERY", "0"))
    if every and seq % every == GIL_SEQ:
        ctypes.PyDLL(None).sleep(int(os.environ.get("CHAOS_GIL_SECONDS", "5")))
    else:
        time.sleep(random.uniform(0.001, 0.010))
    _client.rpush(f"chaos:{event.subject}", f"{seq}:{time.time():.3f}")
