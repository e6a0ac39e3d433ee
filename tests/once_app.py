"""An app whose handlers do a side effect with ``ctx.once`` and can die at a chosen point.

``once:crash`` in Redis names the point where the worker is SIGKILLed, the
first time only: ``before`` (in the block, before the effect),
``after_effect`` (the effect done, not yet recorded) or ``after_record``
(the block ended: recorded; the handler not yet returned).
"""

from __future__ import annotations

import os
import signal

import redis
import redis.asyncio

from redo_hooks import HandlerContext, RedoHooks, ReturnEvent

hooks = RedoHooks()


def _die_at(client: redis.Redis, point: str) -> None:
    if client.get("once:crash") == point.encode() and client.set("once:died", point, nx=True):
        os.kill(os.getppid(), signal.SIGKILL)  # the whole worker, as when its machine is lost
        os.kill(os.getpid(), signal.SIGKILL)


@hooks.on("return", name="once.refund")
def refund(event: ReturnEvent, ctx: HandlerContext) -> None:
    client = redis.Redis.from_url(hooks.settings.redis_url)
    with ctx.once_sync("refund") as first:
        if first:
            _die_at(client, "before")
            client.rpush("once:effects", event.return_id)
            _die_at(client, "after_effect")
    _die_at(client, "after_record")
    client.rpush("once:done", event.return_id)


async def refund_async(event: ReturnEvent, ctx: HandlerContext) -> None:
    """The same, awaiting (the in-process tests), with failures instead of deaths."""
    async with redis.asyncio.Redis.from_url(hooks.settings.redis_url) as client:
        async with ctx.once("refund") as first:
            if first:
                await client.rpush("once:effects", event.return_id)
                if await client.get("once:fail_in_block"):
                    raise RuntimeError("the refund's API call failed")
        if await client.incr("once:calls") == 1 and await client.get("once:fail_after"):
            raise RuntimeError("a later step failed")
        await client.rpush("once:done", event.return_id)
