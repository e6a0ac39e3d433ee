"""Redis commands from many coroutines, sent together: one round trip serves them all.

A worker process runs hundreds of lanes on one event loop, each making a
Redis call per event (``lane_next.lua``). Production Redis is a network hop
away: one connection per call in flight would open hundreds of sockets (each
taking Redis memory), and one call at a time would queue every lane behind
each round trip. :class:`Batched` queues the calls made while earlier ones
are on the wire and sends them as one pipeline, with at most ``in_flight``
pipelines (connections) at once: the lanes share round trips instead of
waiting for them.

The bounds are small on purpose: a pipeline's replies wait in Redis' output
buffer, which counts as Redis memory, until they are read, and a lane's reply
carries an event's body; under memory pressure that room is what the workers
need to drain. Two pipelines of eight keep async lanes at the speed of
loopback with Redis a zone away (``benchmarks/README.md``, ``dispatch --rtt``).

Each call gets its own reply or its own error; a lost connection fails the
calls of that pipeline only. Scripts go as ``EVALSHA`` and are loaded (and
the call sent again) when Redis does not know them (after a restart or a
failover).
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import cache
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError

_Call = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class Batched:
    """Commands sent in shared round trips (see the module docstring)."""

    def __init__(self, client: AsyncRedis, *, in_flight: int = 2, most: int = 8) -> None:
        self.client = client
        #: Pipelines on the wire at once (each holds one connection).
        self.in_flight = in_flight
        #: Commands in one pipeline at most.
        self.most = most
        self._waiting: list[_Call] = []
        self._sending = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def command(self, *args: Any) -> Any:
        """Send one command (``"GET", key``) with the others queued meanwhile; its reply."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, future))
        self._schedule()
        return await future

    async def script(self, source: str, keys: list[Any], args: list[Any]) -> Any:
        """Run a Lua script by its SHA1, loading it first if Redis does not know it."""
        sha = _sha1(source)
        try:
            return await self.command("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.client.script_load(source)
            return await self.command("EVALSHA", sha, len(keys), *keys, *args)

    def _schedule(self) -> None:
        # At the end of this turn of the loop: the lanes ready in the same
        # turn share the pipeline.
        if self._waiting and self._sending < self.in_flight and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send_next)

    def _send_next(self) -> None:
        self._scheduled = False
        if not self._waiting or self._sending >= self.in_flight:
            return
        batch, self._waiting = self._waiting[: self.most], self._waiting[self.most :]
        self._sending += 1
        task = asyncio.ensure_future(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection, or a cancelled loop: every call hears it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._sending -= 1
            self._schedule()


@cache  # a lane calls a script per event: hash each source once
def _sha1(source: str) -> str:
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
