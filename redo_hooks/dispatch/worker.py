"""Building and running workers: RQ ``SimpleWorker`` processes bound to an app.

``SimpleWorker`` runs jobs in the worker process itself: RQ's default
``Worker`` forks per job and opens a fresh Redis connection per job, which
costs more than most handlers (``benchmarks/README.md`` has the figures). A
process runs ``jobs_per_process`` of them at once: one in the main thread
and one more per job slot thread, each in our loop over RQ's worker
(``rq_worker.WorkerBase.run``), all sharing the process's
event loop and thread pool (``runtime.py``). ``--concurrency N`` starts N
such processes (``supervisor.py``); each handles SIGTERM as RQ does (finish
the jobs in hand, then exit).

Burst mode drains: it runs until the queue is empty *and* no retry is
scheduled, moving scheduled retries onto the queue as they come due. Tests
and benchmarks rely on this.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job

from .. import tracing
from ..backoff import exponential
from ..errors import RedoHooksError
from ..logs import get_logger
from ..store import worker_handlers
from ..store.connections import redis_client
from ..store.issues import index_issues
from ..store.memory import Memory, check_policy
from ..store.replies import text
from ..store.retention import index_parked_letters, trim_replay_index
from ..store.rq_registries import scheduled_job_ids
from .lanes import bind
from .promoter import promote_scheduled, start_promoter
from .rescue import rescue_orphaned_lanes
from .rq_worker import WorkerBase
from .runtime import App, Runtime, WorkerLoop

log = get_logger("redo_hooks.dispatch.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How to run workers."""

    burst: bool = False
    concurrency: int = 1
    #: Seconds a running handler may take to finish after SIGTERM; None: no limit.
    grace_period: float | None = None
    # RQ's own log level; its per-job INFO lines cost more than a no-op job.
    rq_log_level: str = "WARNING"
    #: The set this process lists its running jobs in, for its parent to
    #: renew their heartbeats (``Keys.runs``); None: not supervised.
    runs_key: str | None = None
    #: A file the parent touches on each turn of its loop (a few seconds
    #: apart), for a liveness probe: ``redo-hooks alive FILE``.
    alive_file: str | None = None
    #: The queues a process takes jobs from (``Runtime.serve``): a supervised
    #: service gives its processes "normal" and one process "quarantine".
    serve: str = "both"


# Crash detection: a running job's heartbeat (Settings.heartbeat_ttl) is
# renewed four times per TTL while a handler runs and lapses that long after
# the worker died; any live worker's maintenance (Settings.maintenance_interval)
# then re-queues the job. An idle worker waits on the queue a second at a
# time (rq_worker.IDLE_WAIT) and runs maintenance when it is due between two
# waits. RQ keeps a worker's key worker_ttl + 60 s past its last heartbeat.


class LaneWorker(WorkerBase):
    """An RQ worker that runs lane jobs in its own process, with short heartbeats.

    ``SimpleWorker`` runs a job in its own (only) thread, so RQ cannot renew
    the job's heartbeat while a handler runs; ``WorkerBase`` renews a short
    one (``heartbeat_ttl``) from a thread, so a crash is noticed in seconds.

    On SIGTERM/SIGINT RQ lets the current job finish; the lane job then hands
    its remaining lanes to a new job after the event in hand, instead of
    running up to its whole time slice. With a ``grace_period``, a handler
    still running when it ends is interrupted (a cold stop): its event
    runs again later, as after a crash.
    """

    runtime: Runtime | None = None
    grace_period: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The process's other job slots (their workers), when this one is the main.
        self.siblings: list[LaneWorker] = []

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> LaneWorker:
        """A worker on ``runtime``'s queue and Redis client, with its settings' timings."""
        settings = runtime.settings
        worker = cls(
            runtime.served,
            connection=runtime.connection,
            maintenance_interval=settings.maintenance_interval,
            worker_ttl=settings.maintenance_interval + 15,
        )
        worker.heartbeat_ttl = settings.heartbeat_ttl
        worker.runtime = runtime
        worker.runs_key = runtime.runs_key
        # A pass takes seconds; a dead holder's lock must not outlast a few passes.
        worker.lock_ttl = max(10, 2 * settings.maintenance_interval)
        if runtime.runs_key is not None:  # its parent releases the lock if this process dies
            worker.lock_holder = runtime.runs_key
        return worker

    def on_stop_requested(self) -> None:
        """Ask the running lane jobs to hand their lanes on (see class docs)."""
        if self.runtime is not None:
            self.runtime.stopping = True
        for slot in self.siblings:
            slot.stop_soon()
        if self.grace_period is not None:
            self.force_stop_after(self.grace_period)

    def on_cold_stop(self) -> None:
        """The grace period is over: the slots' jobs are failed, so RQ runs them again at once."""
        for slot in self.siblings:
            slot.fail_running_job("interrupted: the worker stopped cold (--grace-period)")

    def taken_jobs_may_be_alive(self) -> bool:
        """Whether a live supervised process does not beat itself (it may be frozen).

        Checked here, from each listed process's own beat (``Keys.processes``,
        ``Keys.alive``), not from its parent's later note: a job taken at a
        frozen process's last moment is rescued only ``heartbeat_ttl`` after
        it was first seen, and that process's beat has lapsed by then. A
        process starting up, or dead and not yet unlisted, also holds the
        rescue, a pass or two at most. ``Keys.frozen`` is read too, as
        parents of the previous release write only that.
        """
        if self.runtime is None:
            return False
        keys, now = self.runtime.keys, time.time()
        listed = self.connection.zrangebyscore(keys.processes, now, "+inf")
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zcount(keys.frozen, now, "+inf")
            for runs in listed:
                pipe.exists(keys.alive(text(runs)))
            said, *beating = pipe.execute()
        frozen = max(int(said), beating.count(0))
        if frozen:
            log.warning("stranded_job_rescue_held", frozen_processes=frozen)
        return frozen > 0

    def on_stranded_rescued(self, job_id: str) -> None:
        """A job a dead worker took but never started was failed, so that RQ runs it again."""
        log.warning("stranded_job_rescued", job_id=job_id)

    def maintenance(self, queue: Queue) -> None:
        """Rescue orphaned lanes, trim the replay index, index old letters (after RQ's).

        Once per pass, under the queue's maintenance lock: it covers every
        lane, so under the quarantine's lock too it would run beside another
        worker's pass (and rescue a lane twice).
        """
        rt = self.runtime
        if rt is not None and queue.name == rt.queue.name:
            rescue_orphaned_lanes(rt)
            trim_replay_index(rt.connection, rt.keys, rt.settings.retention)
            index_parked_letters(rt.connection, rt.keys)
            index_issues(rt.connection, rt.keys)


def build(
    hooks: App,
    process: WorkerLoop | None = None,
    runs_key: str | None = None,
    serve: str = "both",
) -> tuple[LaneWorker, Runtime]:
    """A worker for ``hooks`` in this process, with its runtime bound.

    Without ``process`` (the process's loop and lifespan), the runtime makes
    a loop of its own and enters the app's worker lifespan on it. With
    ``runs_key``, its job slots list their running jobs there for the
    supervising parent (``supervisor.py``). ``serve``: which queues it takes
    jobs from (``Runtime.serve``).
    """
    settings = hooks.settings
    # Reads never hang on a lost primary: a bound well past the longest
    # blocking call (a wait on the queue, IDLE_WAIT).
    connection = redis_client(
        settings.redis_url,
        socket_timeout=settings.maintenance_interval + 10,
        socket_connect_timeout=5,
    )
    queue, quarantine = (
        Queue(name, connection=connection) for name in (settings.queue, settings.quarantine_queue)
    )
    owns_process = process is None
    if process is None:
        process = WorkerLoop(hooks.on_worker_lifespan)
        process.open()
    runtime = Runtime(
        hooks.registry,
        settings,
        connection,
        queue,
        quarantine,
        serve=serve,
        process=process,
        owns_process=owns_process,
    )
    runtime.runs_key = runs_key
    bind(runtime)
    return LaneWorker.for_runtime(runtime), runtime


class StopSignal:
    """The process's SIGTERM/SIGINT: a warm stop, then (a second one) a cold stop.

    The first signal asks the worker to stop after the jobs in hand
    (``stop_soon``); one that comes before the worker is built, or between
    two workers after a lost connection, stops the next one before it
    starts. A second signal more than a second later (a duplicate, from a
    process manager and a terminal at once, comes within one) stops the
    process cold: the running jobs fail, so RQ retries them at once.
    """

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.worker: LaneWorker | None = None
        self.first_at: float | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        worker = self.worker
        if self.first_at is None:
            self.first_at = time.monotonic()
            self.asked.set()
            if worker is not None:
                worker.stop_soon()
        elif time.monotonic() - self.first_at > 1 and worker is not None:
            log.warning("worker_cold_stop", worker=worker.name)
            worker.stop_cold()


def work(hooks: App, options: WorkerOptions, stop: StopSignal | None = None) -> int:
    """Run one worker in this process until stopped (or drained, in burst mode).

    The process's event loop and the app's worker lifespan are set up once,
    and closed when the worker stops, whatever happens in between. ``stop``:
    one the caller installed earlier (a signal before this call still counts).
    """
    if stop is None:
        stop = StopSignal()
    stop.install()
    process = WorkerLoop(hooks.on_worker_lifespan)
    try:
        process.open()
    except Exception:
        log.exception("on_worker_failed")
        process.close()
        return 1
    try:
        return _work(hooks, options, process, stop)
    finally:
        process.close()
        tracing.shutdown()  # the spans still batched, exported before the process ends


def _work(hooks: App, options: WorkerOptions, process: WorkerLoop, stop: StopSignal) -> int:
    """Workers one after another: the loop, and a fresh one if Redis was lost.

    The loop retries a lost connection only while it waits for a job; any
    other Redis error (a failover under way, say) ends it. Then a fresh
    worker starts after a pause, for as long as it takes Redis to come back:
    what the dead one held is rescued by maintenance, as after a crash.
    """
    # Each worker process its own exporter (threads do not survive a fork).
    tracing.setup(hooks.settings.otel, "redo-hooks-worker")
    pause, failures = 0.5, 0
    while True:
        worker: LaneWorker | None = None
        runtime: Runtime | None = None
        stop.worker = None
        try:
            worker, runtime = build(hooks, process, options.runs_key, options.serve)
            worker.grace_period = options.grace_period
            stop.worker = worker
            if stop.asked.is_set():
                return 0
            log.info(
                "worker_started",
                worker=worker.name,
                queues=[q.name for q in runtime.served],
                redis=hooks.settings.redis_url_safe,
                burst=options.burst,
                handlers=len(hooks.registry),
            )
            check_policy(Memory.from_info(runtime.connection.info("memory")), "worker")
            live = {f"{w.hostname}:{w.pid}" for w in Worker.all(connection=runtime.connection)}
            worker_handlers.publish(
                runtime.connection, runtime.keys, (h.name for h in hooks.registry), live
            )
            if options.burst:
                drain_burst(worker, runtime, options.rq_log_level)
                return 0
            serve(hooks, worker, runtime, options.rq_log_level)
        except (RedisError, OSError) as exc:
            if stop.asked.is_set() or (worker is not None and worker.stop_requested):
                # Stopping, and the worker's death could not be registered:
                # its key expires by itself.
                log.warning("worker_stopped_without_teardown", error=type(exc).__name__)
                return 0
            if options.burst:
                log.error("worker_lost_redis", error=type(exc).__name__)
                return 1
            log.error(
                "worker_lost_redis", error=type(exc).__name__, detail=str(exc)[:200], retry_in=pause
            )
        else:
            if worker.stop_requested or stop.asked.is_set():
                return 0
            log.error("worker_loop_ended", retry_in=pause)
        finally:
            if runtime is not None:
                with contextlib.suppress(RedisError, OSError):  # a later start prunes it
                    worker_handlers.unpublish(runtime.connection, runtime.keys)
                runtime.close()
        failures += 1
        if stop.asked.wait(pause):
            return 0
        pause = exponential(failures + 1, 0.5, 10.0, jitter=False)


def serve(hooks: App, worker: LaneWorker, runtime: Runtime, log_level: str) -> None:
    """The loop in this thread, the other job slots and the promoter beside it."""
    promoting = start_promoter(runtime.connection, runtime.served)
    slots = start_slots(worker, runtime, log_level)
    try:
        worker.run(log_level=log_level)
    except (RedisError, OSError):
        stop_slots(worker, slots, timeout=30)
        raise
    finally:  # a cold stop (SystemExit) does not wait: slots are daemons
        promoting.set()
    stop_slots(worker, slots)  # (a second signal meanwhile stops the process cold)


def start_slots(
    main: LaneWorker, runtime: Runtime, log_level: str, *, burst: bool = False
) -> list[threading.Thread]:
    """Start ``jobs_per_process - 1`` more job slots beside ``main``, each an RQ worker thread.

    They share the process's runtime (loop, thread pool, Redis client); a
    stop asked of ``main`` (it alone gets the signals) is passed on to them.
    With ``burst``, each ends when it finds the queue empty.
    """
    threads = []
    for n in range(1, runtime.slots):
        slot = LaneWorker.for_runtime(runtime)
        slot.in_thread()
        main.siblings.append(slot)

        def serve(worker: LaneWorker = slot) -> None:
            try:
                worker.run(burst=burst, log_level=log_level)
            except Exception:  # its jobs are rescued as after a crash
                log.exception("job_slot_failed", worker=worker.name)

        thread = threading.Thread(target=serve, name=f"redo-hooks-slot-{n}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def stop_slots(
    main: LaneWorker, threads: list[threading.Thread], timeout: float | None = None
) -> None:
    """Ask every slot to stop after its job in hand, and wait for them."""
    for slot in main.siblings:
        slot.stop_soon()
    for thread in threads:
        thread.join(timeout)
    main.siblings.clear()


def drain_burst(
    worker: LaneWorker,
    runtime: Runtime,
    log_level: str,
    deadline: float | None = None,
    *,
    retry_at_once: bool = False,
) -> None:
    """Work in burst mode until nothing is queued or scheduled (or a stop is asked).

    Every job slot works, as in a long-running worker (``jobs_per_process``
    jobs at once: RQ's own round trips for one job overlap the others').
    Scheduled retries are moved onto the queue as they come due, or at once
    with ``retry_at_once`` (tests). Raises
    ``RedoHooksError`` when ``deadline`` (a ``time.monotonic()`` value) passes.
    """
    while True:
        slots = start_slots(worker, runtime, log_level, burst=True)
        try:
            worker.run(burst=True, log_level=log_level)
        finally:
            for thread in slots:
                thread.join()
            worker.jobs_run += sum(slot.jobs_run for slot in worker.siblings)  # (the drain's count)
            worker.siblings.clear()
        if worker.stop_requested:
            return
        if any(runtime.connection.llen(queue.key) for queue in runtime.served):
            continue  # a slot handed lanes on after the others found the queue empty
        missing = missing_handlers_only(runtime)
        if missing:
            # Nothing this app can run is left: their lanes are passed on to
            # a worker that has the handlers (or dead-lettered in time).
            log.warning("burst_left_events_of_missing_handlers", handlers=sorted(missing))
            return
        if not promote_scheduled(
            runtime.connection,
            runtime.served,
            wait=not retry_at_once,
            all_now=retry_at_once,
            deadline=deadline,
        ):
            return
        if deadline is not None and time.monotonic() > deadline:
            raise RedoHooksError("the queue did not drain in time")


def missing_handlers_only(runtime: Runtime) -> set[str]:
    """The handlers of the scheduled jobs, if none of them is registered here; else empty.

    A burst worker would otherwise wait for ever on the lanes it passes on
    every few seconds because it lacks their handler.
    """
    handlers: set[str] = set()
    ids = [i for q in runtime.served for i in scheduled_job_ids(runtime.connection, q)]
    for job in Job.fetch_many(ids, connection=runtime.connection):
        if job is None:  # an id without a hash: the promoter drops it
            continue
        name = str(job.args[0]) if job.args else ""
        if runtime.registry.get(name) is not None:
            return set()
        handlers.add(name)
    return handlers
