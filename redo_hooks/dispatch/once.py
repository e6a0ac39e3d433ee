"""``ctx.once``: a side effect that must not repeat when its event runs again.

An event runs again after a retry, a crash (its lane is rescued) or a
replay: a handler's side effects must be idempotent. Where the far side
takes an idempotency key (payments APIs do), pass it one that is the same
on every run: ``ctx.idempotency_key("refund")``. Where it does not,
``ctx.once`` records in Redis that the effect was done, per handler, event
and name, and skips it on every later run within ``ttl``::

    async with ctx.once("refund") as first:
        if first:
            await payments.refund(event.return_.id)

The record is written when the block ends without an exception, so:

* an exception in the block (or a crash before it ends) writes nothing: the
  next run does the effect again;
* a crash after the effect and before the record (the process dies in that
  instant, or Redis does not answer the write) also does it again: the
  effect happened, but no record says so. That instant is why this is
  "at least once, and once only after a recorded success", not "exactly
  once": only the far side can make that window safe, with the idempotency
  key above;
* after the record, no later run does it: a retry, a rescue, a replay.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis


@dataclass(frozen=True, slots=True)
class OnceRecords:
    """Where ``ctx.once`` records done side effects: ``<p>:once:<handler>:<event>:<name>``."""

    aio: AsyncRedis
    sync: Redis
    prefix: str
    #: Seconds a record is kept (default: the app's ``retention``, as long as a
    #: replay can bring the event back).
    ttl: int

    def key(self, handler: str, event_key: str, name: str) -> str:
        """The record of effect ``name`` of ``handler`` on event ``event_key``."""
        return f"{self.prefix}once:{handler}:{event_key}:{name}"

    @asynccontextmanager
    async def once(self, key: str, ttl: int | None) -> AsyncIterator[bool]:
        """Yield whether the effect is still to do; record it when the block ends cleanly."""
        if await self.aio.exists(key):
            yield False
            return
        yield True
        await self.aio.set(key, str(time.time()), ex=ttl or self.ttl)

    @contextmanager
    def once_sync(self, key: str, ttl: int | None) -> Iterator[bool]:
        """:meth:`once` for a sync handler (it runs on a thread of the pool)."""
        if self.sync.exists(key):
            yield False
            return
        yield True
        self.sync.set(key, str(time.time()), ex=ttl or self.ttl)
