"""What lane jobs need in a worker process: settings, routing, Redis, scripts.

Built once by the worker (``dispatch/worker.py``) and bound with
:func:`redo_hooks.dispatch.lanes.bind`, since RQ calls job functions by name.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog
from redis import Redis
from redis.commands.core import Script
from rq import Queue

from ..models import ReturnEvent
from ..settings import Settings
from ..store import lua
from ..store.connections import server_time
from ..store.keys import Keys
from .callbacks import FailureNotifier
from .context import HandlerContext
from .counters import WorkerMetrics
from .handlers import Handler, Registry
from .threads import DaemonThreadPool

T = TypeVar("T")

#: Makes the async context manager a worker process enters once (``ctx.state``).
WorkerLifespan = Callable[[], AbstractAsyncContextManager[Any]]


class App(Protocol):
    """What the worker needs of the user's ``RedoHooks``: handlers, settings, lifespan."""

    @property
    def registry(self) -> Registry: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def worker_lifespan(self) -> WorkerLifespan | None: ...


class WorkerLoop:
    """A worker process's one event loop, in a thread of its own, and its lifespan's state.

    Lives as long as the process (across reconnections to Redis). Every job
    slot of the process runs its lanes here (:meth:`run`), so their async
    handlers share one loop and the lifespan's resources.
    """

    def __init__(self, lifespan: WorkerLifespan | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.state: Any = None
        self._lifespan = lifespan
        self._entered: AbstractAsyncContextManager[Any] | None = None
        self._thread = threading.Thread(target=self._serve, name="redo-hooks-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop; wait for it here. Interrupted, it is cancelled."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # a cold stop, or a job timeout: the lanes stop too
            raise

    def open(self) -> None:
        """Enter the lifespan (once)."""
        if self._lifespan is not None and self._entered is None:
            manager = self._lifespan()
            self.state = self.run(manager.__aenter__())
            self._entered = manager

    def close(self) -> None:
        """Leave the lifespan, then stop and close the loop."""
        try:
            if self._entered is not None:
                manager, self._entered = self._entered, None
                self.run(manager.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self.loop.close()


@dataclass
class Runtime:
    """What lane jobs need in a worker process, built once by the worker."""

    registry: Registry
    settings: Settings
    connection: Redis
    queue: Queue
    keys: Keys = field(init=False)
    #: Set when the worker was asked to stop: jobs hand their lanes on after
    #: the event in hand, so a rolling restart waits for one handler call only.
    stopping: bool = field(init=False, default=False)
    #: The process's loop and lifespan; without one, the runtime makes its own.
    process: WorkerLoop | None = None
    #: Whether :meth:`close` closes ``process`` too (this runtime alone used it).
    owns_process: bool = False
    #: One long-lived loop per worker process: lanes run as its tasks.
    loop: asyncio.AbstractEventLoop = field(init=False)
    #: At most ``Settings.async_concurrency`` async handler calls at once.
    async_slots: asyncio.Semaphore = field(init=False)
    #: Sync handlers run here, ``Settings.sync_threads`` at once.
    threads: DaemonThreadPool = field(init=False)
    metrics: WorkerMetrics = field(init=False)
    #: Called after each handler call with (handler name, event, outcome,
    #: exception or None); ``redo_hooks.testing`` records what ran with it.
    observer: Callable[[str, ReturnEvent, str, BaseException | None], None] | None = None
    #: Where this process's job slots list their running jobs for the
    #: supervising parent (``Keys.runs``); None: unsupervised.
    runs_key: str | None = field(init=False, default=None)
    #: Runs the ``@hooks.on_failure`` callbacks beside the lanes.
    failures: FailureNotifier = field(init=False)
    #: Permits this process holds: holder -> its handler's permits key.
    permits: dict[str, str] = field(init=False, default_factory=dict)
    _scripts: dict[str, Script] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.key_prefix)
        self.metrics = WorkerMetrics(self.keys.metrics)
        if self.process is None:
            self.process = WorkerLoop(None)
            self.owns_process = True
        self.loop = self.process.loop
        self.async_slots = asyncio.Semaphore(self.settings.async_concurrency)
        self.threads = DaemonThreadPool(self.settings.sync_threads)
        self.failures = FailureNotifier(
            self.registry.failure_callbacks,
            self.loop,
            self.threads,
            self.settings.failure_callback_timeout,
        )
        self._scripts = {
            name: self.connection.register_script(lua.source(name))
            for name in (
                "job_claim",
                "lane_next",
                "lane_fail",
                "lane_dead",
                "lane_park",
                "lanes_transfer",
                "permit_take",
                "lanes_orphaned",
            )
        }

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the process's loop and wait for it."""
        assert self.process is not None  # set in __post_init__
        return self.process.run(coroutine)

    async def call(self, handler: Handler, event: ReturnEvent, context: HandlerContext) -> None:
        """Call ``handler`` on ``event``: awaited on this loop, or on the thread pool.

        The context's fields are bound in ``structlog.contextvars`` around the
        call, in the handler's thread too.
        """
        args = (event, context) if handler.takes_context else (event,)
        with structlog.contextvars.bound_contextvars(
            handler=context.handler,
            subject=context.subject,
            event_key=context.event_key,
            attempt=context.attempt,
        ):
            if not handler.is_async:
                call = contextvars.copy_context().run
                await self.loop.run_in_executor(self.threads, call, handler.func, *args)
                return
            async with self.async_slots:
                if handler.timeout is None:
                    await handler.func(*args)
                    return
                try:
                    await asyncio.wait_for(handler.func(*args), handler.timeout)
                except TimeoutError:
                    raise TimeoutError(
                        f"the handler ran over its timeout of {handler.timeout:g} s"
                    ) from None

    def take_permit(self, handler: Handler, holder: str) -> float | None:
        """Start a run of ``handler`` under its limits: None if granted, else seconds to wait."""
        if handler.max_concurrency is None and handler.rate is None:
            return None
        per, window = handler.rate or (0, 0.0)
        granted, wait = self.script("permit_take")(
            keys=[self.keys.permits(handler.name), self.keys.starts(handler.name)],
            args=[holder, self.settings.heartbeat_ttl, handler.max_concurrency or 0, per, window],
        )
        if int(granted):
            if handler.max_concurrency is not None:
                self.permits[holder] = self.keys.permits(handler.name)
            return None
        return float(wait)

    def release_permit(self, holder: str) -> None:
        """Give back the permit ``holder`` took, if it took one."""
        key = self.permits.pop(holder, None)
        if key is not None:
            self.connection.zrem(key, holder)

    async def renew_permits(self) -> None:
        """Keep this process's permit leases alive while it lives (a task on the loop).

        A lease lasts ``heartbeat_ttl`` and is renewed four times as often, so
        a killed worker's permits come back within the crash-recovery bound.
        """
        while True:
            await asyncio.sleep(self.settings.heartbeat_ttl / 4)
            if self.permits:
                until = server_time(self.connection) + self.settings.heartbeat_ttl
                with self.connection.pipeline(transaction=False) as pipe:
                    for holder, key in self.permits.items():
                        pipe.zadd(key, {holder: until}, xx=True)
                    pipe.execute()

    def close(self) -> None:
        """Let go of the thread pool, and the loop if this runtime made it.

        A sync handler still running (after a cold stop) is not waited for:
        its event runs again, as after a crash. Failure callbacks still running
        are waited for first (each bounded by ``failure_callback_timeout``).
        """
        if self.failures.pending and self.loop.is_running():
            self.run(self.failures.settle())
        self.threads.shutdown(wait=False)
        if self.owns_process and self.process is not None:
            self.process.close()

    @property
    def state(self) -> Any:
        """What the worker lifespan yielded, handed to handlers as ``ctx.state``."""
        return None if self.process is None else self.process.state

    def script(self, name: str) -> Script:
        """A registered Lua script."""
        return self._scripts[name]
