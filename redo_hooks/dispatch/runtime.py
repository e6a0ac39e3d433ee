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
from typing import Any, ParamSpec, Protocol, TypeVar

import structlog
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.commands.core import Script
from rq import Queue

from ..logs import get_logger
from ..models import ReturnEvent
from ..settings import Settings
from ..store import lua
from ..store.batching import Batched
from ..store.connections import async_redis_client
from ..store.keys import Keys
from .callbacks import Failure, FailureNotifier
from .calls import AttemptExecutor, HandlerCalls
from .context import HandlerContext
from .counters import WorkerMetrics
from .handlers import Handler, Registry
from .once import OnceRecords
from .threads import DaemonThreadPool

T = TypeVar("T")
P = ParamSpec("P")

log = get_logger("redo_hooks.dispatch.runtime")

#: The scripts called from threads: maintenance, job starts, hand-offs, failures.
THREAD_SCRIPTS = (
    "job_claim",
    "lane_next",
    "lane_fail",
    "lane_dead",
    "lane_park",
    "lanes_transfer",
    "lanes_orphaned",
)

#: Makes the async context manager a worker process enters once (``ctx.state``).
WorkerLifespan = Callable[[], AbstractAsyncContextManager[Any]]


class App(Protocol):
    """What the worker needs of the user's ``RedoHooks``: handlers, settings, lifespan."""

    @property
    def registry(self) -> Registry: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def on_worker_lifespan(self) -> WorkerLifespan | None: ...


class WorkerLoop:
    """A worker process's one event loop, in a thread of its own, and its lifespan's state.

    Lives as long as the process (across reconnections to Redis). Every job
    slot of the process runs its lanes here (:meth:`run`), so their async
    handlers share one loop and the lifespan's resources.
    """

    def __init__(self, lifespan: WorkerLifespan | None) -> None:
        self.loop = asyncio.new_event_loop()
        # asyncio.to_thread work is listed against the handler attempt that
        # started it, so a timed-out attempt waits for it (dispatch/calls.py).
        self.loop.set_default_executor(AttemptExecutor(thread_name_prefix="redo-hooks-to-thread"))
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
    """What lane jobs need in a worker process, built once by the worker.

    Two Redis clients: ``connection`` (sync) for RQ and for the threads
    (job starts, hand-offs, failures, maintenance), and ``aio`` (asyncio) for
    what lanes do on the event loop, where no call may wait on a socket:
    every lane of the process shares the loop, and production Redis is a
    network round trip away.
    """

    registry: Registry
    settings: Settings
    connection: Redis
    #: Where lanes are handed on, and the queue this worker takes jobs from
    #: unless it serves the quarantine only.
    queue: Queue
    #: The queue of lanes a crashed process left, one lane a job (``max_crashes``).
    quarantine: Queue
    #: Which queues this process takes jobs from: "both", "normal" or
    #: "quarantine" (a supervised service runs one quarantine process alone).
    serve: str = "both"
    keys: Keys = field(init=False)
    #: Set when the worker was asked to stop: no new handler call starts, and
    #: jobs hand their lanes on after the calls in hand.
    stopping: bool = field(init=False, default=False)
    #: The process's loop and lifespan; without one, the runtime makes its own.
    process: WorkerLoop | None = None
    #: Whether :meth:`close` closes ``process`` too (this runtime alone used it).
    owns_process: bool = False
    #: One long-lived loop per worker process: lanes run as its tasks.
    loop: asyncio.AbstractEventLoop = field(init=False)
    #: The asyncio client, used on ``loop`` only.
    aio: AsyncRedis = field(init=False)
    #: Where handlers' ``ctx.once`` records done side effects.
    records: OnceRecords = field(init=False)
    #: The loop's Redis calls, sent in shared round trips over ``aio``.
    batch: Batched = field(init=False)
    #: Handler calls: async slots, each sync handler's threads, timeouts.
    calls: HandlerCalls = field(init=False)
    #: Blocking work lanes hand off the loop (hand-offs, failures): Redis
    #: round trips through the sync client and RQ's own (sync) API.
    io: DaemonThreadPool = field(init=False)
    #: ``@hooks.on_failure`` callbacks that are plain functions run here.
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
        settings = self.settings
        self.aio = async_redis_client(
            settings.redis_url,
            socket_timeout=settings.maintenance_interval + 10,
            socket_connect_timeout=5,
        )
        self.calls = HandlerCalls(
            self.loop,
            list(self.registry),
            sync_threads=settings.sync_threads,
            async_concurrency=settings.async_concurrency,
            default_timeout=settings.job_timeout,
            stopping=lambda: self.stopping,
        )
        self.records = OnceRecords(self.aio, self.connection, self.keys.base, settings.retention)
        self.io = DaemonThreadPool(16, name="redo-hooks-io")
        self.threads = DaemonThreadPool(settings.sync_threads, name="redo-hooks-callback")
        self.failures = FailureNotifier(
            self.registry.failure_callbacks,
            self.loop,
            self.threads,
            settings.failure_callback_timeout,
        )
        self._scripts = {
            name: self.connection.register_script(lua.source(name)) for name in THREAD_SCRIPTS
        }
        self.batch = Batched(self.aio)

    async def lane_script(self, name: str, keys: list[Any], args: list[Any]) -> Any:
        """Call Lua script ``name`` from the loop (in a shared round trip)."""
        return await self.batch.script(lua.source(name), keys, args)

    @property
    def served(self) -> list[Queue]:
        """The queues this process takes jobs from, in order of priority."""
        return {
            "normal": [self.queue],
            "quarantine": [self.quarantine],
        }.get(self.serve, [self.queue, self.quarantine])

    @property
    def slots(self) -> int:
        """Jobs this process runs at once: one in quarantine, where a crash must be its own."""
        return 1 if self.serve == "quarantine" else self.settings.jobs_per_process

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the process's loop and wait for it."""
        assert self.process is not None  # set in __post_init__
        return self.process.run(coroutine)

    async def off_loop(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking ``func`` (sync Redis, RQ's API) on the I/O threads, so the loop goes on.

        In a copy of the caller's context: what it logs there (a failure, a
        dead letter) carries the same bound fields and the current span's ids.
        """
        context = contextvars.copy_context()

        def run() -> T:
            return context.run(func, *args, **kwargs)

        return await asyncio.wrap_future(self.io.submit(run))

    async def call(self, handler: Handler, event: ReturnEvent, context: HandlerContext) -> None:
        """Call ``handler`` on ``event`` (``calls.HandlerCalls``: bounded, never overlapping).

        The context's fields are bound in ``structlog.contextvars`` around the
        call, in the handler's thread too.
        """
        args = (event, context) if handler.takes_context else (event,)
        with structlog.contextvars.bound_contextvars(
            handler=context.handler,
            return_id=context.return_id,
            event_key=context.event_key,
            attempt=context.attempt,
        ):

            def timed_out(limit: float) -> None:
                # Said at once, while the lane still waits for the call's work to end.
                self.metrics.timeout(handler.name)
                log.warning("handler_timed_out", timeout=limit, waiting_for_its_work=True)
                if self.failures.callbacks:
                    self.failures.notify(
                        Failure(
                            kind="timed_out",
                            handler=handler.name,
                            return_id=context.return_id,
                            event_key=context.event_key,
                            event=event,
                            error=None,
                            error_text=f"ran over its timeout of {limit:g} s",
                            attempt=context.attempt,
                        )
                    )

            await self.calls.call(handler, args, timed_out)

    async def take_permit(self, handler: Handler, holder: str) -> float | None:
        """Start a run of ``handler`` under its limits: None if granted, else seconds to wait."""
        if handler.max_concurrency is None and handler.rate is None:
            return None
        per, window = handler.rate or (0, 0.0)
        granted, wait = await self.lane_script(
            "permit_take",
            keys=[self.keys.permits(handler.name), self.keys.starts(handler.name)],
            args=[holder, self.settings.heartbeat_ttl, handler.max_concurrency or 0, per, window],
        )
        if int(granted):
            if handler.max_concurrency is not None:
                self.permits[holder] = self.keys.permits(handler.name)
            return None
        return float(wait)

    async def release_permit(self, holder: str) -> None:
        """Give back the permit ``holder`` took, if it took one."""
        key = self.permits.pop(holder, None)
        if key is not None:
            await self.batch.command("ZREM", key, holder)

    async def renew_permits(self) -> None:
        """Keep this process's permit leases alive while it lives (a task on the loop).

        A lease lasts ``heartbeat_ttl`` and is renewed four times as often, so
        a killed worker's permits come back within the crash-recovery bound.
        """
        while True:
            await asyncio.sleep(self.settings.heartbeat_ttl / 4)
            if self.permits:
                seconds, micros = await self.batch.command("TIME")
                until = float(seconds) + float(micros) / 1e6 + self.settings.heartbeat_ttl
                await asyncio.gather(
                    *(
                        self.batch.command("ZADD", key, "XX", until, holder)
                        for holder, key in list(self.permits.items())
                    )
                )

    def close(self) -> None:
        """Let go of the threads and the asyncio client, and the loop if this runtime made it.

        A sync handler still running (after a cold stop) is not waited for:
        its event runs again, as after a crash. Failure callbacks still running
        are waited for first (each bounded by ``failure_callback_timeout``).
        """
        if self.loop.is_running():
            if self.failures.pending:
                self.run(self.failures.settle())
            try:
                self.run(self.aio.aclose())
            except Exception as exc:  # its sockets close with the process anyway
                log.debug("async_client_close_failed", error=type(exc).__name__)
        self.calls.shutdown()
        self.io.shutdown(wait=False)
        self.threads.shutdown(wait=False)
        # The sync client's idle connections (one per I/O thread and job slot
        # that used it) close now, not whenever the pool is collected: each
        # holds Redis memory, which the memory-pressure guard counts.
        self.connection.connection_pool.disconnect(inuse_connections=False)
        if self.owns_process and self.process is not None:
            self.process.close()

    @property
    def state(self) -> Any:
        """What the worker lifespan yielded, handed to handlers as ``ctx.state``."""
        return None if self.process is None else self.process.state

    def script(self, name: str) -> Script:
        """A registered Lua script, for the sync client (threads)."""
        return self._scripts[name]

    async def flush_metrics(self, *, unless_recent: bool = False) -> None:
        """Add the process's buffered counts to Redis, from the loop."""
        if not unless_recent or self.metrics.due():
            await self.metrics.flush(self.batch)
