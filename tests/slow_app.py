"""An app whose handler takes a while, for shutdown tests."""

from __future__ import annotations

import asyncio
import ctypes
import os
import time

import redis
import redis.asyncio

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="slow.recorder")
def record(event: ReturnEvent) -> None:
    """Marks the start, works for a second, then records the event."""
    client = redis.Redis.from_url(hooks.settings.redis_url)
    client.rpush(f"started:{event.return_id}", int(event.raw["seq"]))
    time.sleep(float(os.environ.get("SLOW_SECONDS", "1")))
    client.rpush(f"done:{event.return_id}", int(event.raw["seq"]))


async def awaits(event: ReturnEvent) -> None:
    """The same, awaiting: many of them in flight at once."""
    client = redis.asyncio.Redis.from_url(hooks.settings.redis_url)
    seq = f"{event.return_id}:{event.raw['seq']}"
    await client.rpush("awaiting:started", seq)
    await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "1")))
    await client.rpush("awaiting:done", seq)
    await client.aclose()


#: Only the awaiting handler, for the in-flight shutdown test.
awaiting_only = RedoHooks()
awaiting_only.add(awaits, "return", name="slow.awaiting")


def holds_the_gil(event: ReturnEvent) -> None:
    """Marks start and end; the first event holds the GIL in one C call meanwhile.

    Later events sleep ``SLOW_SECONDS`` (0), releasing the GIL.

    ``PyDLL`` calls keep the GIL (``CDLL`` calls release it): for
    ``GIL_SECONDS`` no other thread of the process runs a line of Python,
    the heartbeat thread included, as with a long ``re`` match.
    """
    client = redis.Redis.from_url(hooks.settings.redis_url)
    seq = int(event.raw["seq"])
    client.rpush(f"gil:{event.return_id}", f"start {seq}")
    if seq == 0:
        ctypes.PyDLL(None).sleep(int(os.environ.get("GIL_SECONDS", "10")))
    else:
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
    client.rpush(f"gil:{event.return_id}", f"end {seq}")


#: Only the GIL-holding handler, for the liveness test.
gil_holder = RedoHooks()
gil_holder.add(holds_the_gil, "return", name="slow.gil")
