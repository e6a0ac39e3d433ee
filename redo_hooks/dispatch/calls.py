"""Calling a handler: awaited on the loop or run on its own threads, bounded, never overlapping.

Three promises meet here:

* **A timeout never overlaps the lane's next attempt.** An ``async``
  handler past its ``timeout`` is cancelled, but work it handed to a thread
  (``asyncio.to_thread``, ``loop.run_in_executor(None, ...)``) cannot be:
  such work goes through the loop's default executor, which lists it against
  the attempt that started it (:class:`AttemptExecutor`), and the attempt
  ends only when that work has returned. A sync handler cannot be
  interrupted at all: past ``job_timeout`` (or its own ``timeout``) the
  timeout is reported at once, and the attempt ends, as failed, when the
  thread returns. Either way the next attempt, and the return's next event,
  wait for it.
* **Bulkheads.** Each sync handler has threads of its own: ``max_threads``,
  or a fair share of ``sync_threads`` (split evenly among the app's sync
  handlers), so a slow handler never takes the threads another needs.
* **A stop starts nothing new.** Once the worker is stopping, a call that
  has not started (waiting for an async slot or a thread) is not started:
  :class:`NotStarted` hands its lane on instead.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from .handlers import Handler
from .threads import DaemonThreadPool

P = ParamSpec("P")
T = TypeVar("T")

#: The thread work the attempt under way started (a set per attempt).
_ATTEMPT_WORK: contextvars.ContextVar[set[Future[Any]] | None] = contextvars.ContextVar(
    "redo_hooks_attempt_work", default=None
)


class NotStarted(Exception):
    """The worker is stopping: the call was not started, its lane is handed on."""


class HandlerTimeout(TimeoutError):
    """The call ran over its time limit; raised once its work has really ended."""


class AttemptExecutor(ThreadPoolExecutor):
    """The loop's default executor: lists each piece of work against the attempt that started it.

    ``asyncio.to_thread`` submits from the calling task's context, so the
    attempt's set (a context variable) is seen here.
    """

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future = super().submit(fn, *args, **kwargs)
        work = _ATTEMPT_WORK.get()
        if work is not None:
            work.add(future)
        return future


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def fair_shares(handlers: list[Handler], total: int) -> dict[str, int]:
    """Threads of each sync handler: its ``max_threads``, or an even share of ``total``."""
    sync = [h for h in handlers if not h.is_async]
    unset = [h for h in sync if h.max_threads is None]
    share = max(1, total // len(unset)) if unset else 0
    return {h.name: h.max_threads if h.max_threads is not None else share for h in sync}


class HandlerCalls:
    """Runs handler calls for one worker process (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handlers: list[Handler],
        *,
        sync_threads: int,
        async_concurrency: int,
        default_timeout: float,
        stopping: Callable[[], bool],
    ) -> None:
        self.loop = loop
        self.default_timeout = default_timeout
        self.async_slots = asyncio.Semaphore(async_concurrency)
        self.pools = {
            name: DaemonThreadPool(size, name=f"redo-hooks-{name}")
            for name, size in fair_shares(handlers, sync_threads).items()
        }
        self._stopping = stopping

    def limit(self, handler: Handler) -> float:
        """Seconds a call of ``handler`` may take before it counts as timed out."""
        return self.default_timeout if handler.timeout is None else handler.timeout

    async def call(
        self, handler: Handler, args: tuple[Any, ...], on_timeout: Callable[[float], None]
    ) -> None:
        """Call ``handler`` with ``args``; raise what it raised, or the errors above.

        ``on_timeout`` is called (with the limit) the moment the call runs over it.
        """
        if handler.is_async:
            async with self.async_slots:
                if self._stopping():
                    raise NotStarted
                await self._awaited(handler, args, on_timeout)
        else:
            await self._threaded(handler, args, on_timeout)

    async def _awaited(
        self, handler: Handler, args: tuple[Any, ...], on_timeout: Callable[[float], None]
    ) -> None:
        work: set[Future[Any]] = set()
        token = _ATTEMPT_WORK.set(work)
        try:
            task = asyncio.ensure_future(handler.func(*args))
        finally:
            _ATTEMPT_WORK.reset(token)
        limit = self.limit(handler)
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
        except asyncio.CancelledError:  # the worker stops cold: the handler goes too
            task.cancel()
            raise
        if done:
            task.result()
            return
        task.cancel()
        on_timeout(limit)
        await asyncio.wait({task})  # a handler may take its time to leave
        await self._settle(work)
        raise HandlerTimeout(f"the handler ran over its timeout of {limit:g} s")

    async def _settle(self, work: set[Future[Any]]) -> None:
        """Wait until the attempt's thread work has returned (it may start more meanwhile)."""
        while running := [f for f in work if not f.done()]:
            await asyncio.wait([asyncio.wrap_future(f) for f in running])

    async def _threaded(
        self, handler: Handler, args: tuple[Any, ...], on_timeout: Callable[[float], None]
    ) -> None:
        began: asyncio.Future[None] = self.loop.create_future()

        def guarded() -> None:
            if self._stopping():
                raise NotStarted
            self.loop.call_soon_threadsafe(_settle, began)
            handler.func(*args)

        call = contextvars.copy_context().run
        future = asyncio.wrap_future(self.pools[handler.name].submit(call, guarded))
        # The clock starts when a thread takes the call: the wait for one of
        # the handler's own threads is not the handler running over its time.
        await asyncio.wait({began, future}, return_when=asyncio.FIRST_COMPLETED)
        limit = self.limit(handler)
        done, _ = await asyncio.wait({future}, timeout=limit)
        if not done:
            # A thread cannot be interrupted: say so now, and hold the lane
            # until it returns (its next attempt must not overlap it).
            on_timeout(limit)
            await asyncio.wait({future})
            raise HandlerTimeout(
                f"the handler ran over its timeout of {limit:g} s "
                "(a sync handler cannot be interrupted: its thread was waited for)"
            )
        future.result()

    def shutdown(self) -> None:
        """Take no more work; threads still running are not waited for (daemons)."""
        for pool in self.pools.values():
            pool.shutdown(wait=False)
