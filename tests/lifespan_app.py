"""An app whose workers set up a Redis client once per process, for handlers to use."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from redo_hooks import HandlerContext, RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on_worker
async def resources() -> AsyncIterator[dict[str, Any]]:
    """One client per worker process, on its loop; its opening and closing recorded."""
    client = Redis.from_url(hooks.settings.redis_url)
    await client.rpush("lifespan:opened", os.getpid())
    try:
        yield {"pid": os.getpid(), "redis": client}
    finally:
        await client.rpush("lifespan:closed", os.getpid())
        await client.aclose()


@hooks.on("return", name="lifespan.uses_state")
async def uses_state(event: ReturnEvent, ctx: HandlerContext) -> None:
    """Records, with the process's own client, which process handled which return."""
    await ctx.state["redis"].rpush("lifespan:used", f"{ctx.state['pid']}:{event.return_id}")
