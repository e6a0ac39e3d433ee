"""Building and running workers: RQ ``SimpleWorker`` processes bound to an app.

``SimpleWorker`` runs jobs in the worker process itself: the fork per job of
RQ's default ``Worker`` costs ~14 ms and a fresh Redis connection per job
(``shared/notes/perf-baselines.md``). ``--concurrency N`` starts N such
processes; each handles SIGTERM as RQ does (finish the current job, then exit).

Burst mode drains: it runs until the queue is empty *and* no retry is
scheduled, moving scheduled retries onto the queue as they come due. Tests
and benchmarks rely on this.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import structlog
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import now

from . import jobs
from .connect import redis_client
from .errors import RedoHooksError
from .hooks import RedoHooks
from .pressure import Memory, check_policy

log = structlog.get_logger("redo_hooks.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How to run workers."""

    burst: bool = False
    concurrency: int = 1
    #: Seconds a running handler may take to finish after SIGTERM; None: no limit.
    grace_period: float | None = None
    # RQ's own log level; its per-job INFO lines cost more than a no-op job.
    rq_log_level: str = "WARNING"


# Crash detection: a running job's heartbeat (Settings.heartbeat_ttl) is
# renewed four times per TTL while a handler runs and lapses that long after
# the worker died; any live worker's maintenance (Settings.maintenance_interval)
# then re-queues the job. RQ's idle worker blocks on the queue for
# worker_ttl - 15 s and only checks for maintenance in between, so worker_ttl
# is the maintenance interval + 15.


class LaneWorker(SimpleWorker):  # rq is untyped: SimpleWorker is Any to mypy
    """RQ's ``SimpleWorker`` with short heartbeats, prompt stops and a job count.

    ``SimpleWorker`` runs a job in its own (only) thread, so RQ cannot renew
    the job's heartbeat while a handler runs and sets it to the job's whole
    timeout + 60 s instead: a crash would go unnoticed for minutes. Here a
    small thread renews a 20 s heartbeat while the job runs.

    On SIGTERM/SIGINT RQ lets the current job finish; the lane job then hands
    its remaining lanes to a new job after the event in hand, instead of
    running up to its whole time slice.
    """

    jobs_run = 0
    runtime: jobs.Runtime | None = None
    heartbeat_ttl = 20
    #: Seconds between two promotions of due scheduled jobs (retries, hand-offs).
    promote_interval = 0.5

    def start_promoter(self) -> threading.Event:
        """Promote due scheduled jobs from a thread; set the returned event to stop it.

        In place of RQ's scheduler, which runs in a forked process holding
        locks and rebuilds its own connection from the pool's parameters (so
        it cannot follow a Sentinel failover): every worker promotes what is
        due, and ``promote_scheduled``'s ZREM lets exactly one take each job.
        """
        done = threading.Event()

        def promote() -> None:
            while not done.wait(self.promote_interval):
                try:
                    promote_scheduled(self.connection, self.queues[0], wait=False)
                except Exception as exc:  # Redis away: try again next time
                    log.debug("promote_failed", error=type(exc).__name__)

        threading.Thread(target=promote, name="redo-hooks-promoter", daemon=True).start()
        return done

    def get_heartbeat_ttl(self, job: Job) -> int:
        """Seconds a running job's heartbeat lasts (renewed every quarter of it)."""
        return self.heartbeat_ttl

    grace_period: float | None = None
    #: Set by SIGTERM/SIGINT: whatever error follows, the process is stopping.
    stop_asked = False

    def handle_warm_shutdown_request(self) -> None:
        """Ask the running lane job to hand its lanes on (see class docs).

        With a ``grace_period``, a handler still running when it ends is
        interrupted (RQ's cold shutdown, by a second SIGTERM): its event runs
        again later, as after a crash.
        """
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.stop_asked = True
        if self.runtime is not None:
            self.runtime.stopping = True
        if self.grace_period is not None:
            timer = threading.Timer(
                max(self.grace_period, 1.1),  # RQ ignores a 2nd signal within 1 s
                os.kill,
                args=(os.getpid(), signal.SIGTERM),
            )
            timer.daemon = True
            timer.start()

    def clean_registries(self) -> None:
        """RQ's maintenance, plus a faster rescue of jobs stranded between queue and start.

        A worker that dies right after taking a job from the queue (BLMOVE) and
        before starting it leaves the job in RQ's intermediate list, which RQ
        only clears after a minute. A live worker moves a job from there to
        the started registry within milliseconds, so after ``heartbeat_ttl``
        such a job is treated like a crashed one: failed, so RQ retries it.
        """
        super().clean_registries()  # type: ignore[no-untyped-call]
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                try:
                    self._rescue_intermediate(queue)
                    if self.runtime is not None:
                        jobs.rescue_orphaned_lanes(self.runtime)
                finally:
                    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]

    def _rescue_intermediate(self, queue: Queue) -> None:
        intermediate = queue.intermediate_queue
        for job_id in intermediate.get_job_ids():
            if job_id in queue.started_job_registry:
                continue
            first_seen = intermediate.get_first_seen(job_id)
            if first_seen is None:
                intermediate.set_first_seen(job_id)
                continue
            if now() - first_seen <= timedelta(seconds=self.heartbeat_ttl):
                continue
            job = queue.fetch_job(job_id)
            if job is not None:
                log.warning("stranded_job_rescued", job_id=job_id)
                self.handle_job_failure(
                    job, queue, exc_string="taken from the queue by a worker that died"
                )
            intermediate.remove(job_id)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run ``job`` in this process, renewing its heartbeat meanwhile."""
        self.jobs_run += 1
        done = threading.Event()
        beats = threading.Thread(target=self._beat, args=(job, done), daemon=True)
        beats.start()
        try:
            super().execute_job(job, queue)
        finally:
            done.set()
            beats.join()

    def _beat(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_ttl / 4):
            try:
                self.maintain_heartbeats(job)
            except Exception:  # a missed beat is retried; never kill the job
                log.warning("heartbeat_failed", job_id=job.id, exc_info=True)


def build(hooks: RedoHooks) -> tuple[LaneWorker, jobs.Runtime]:
    """A worker for ``hooks`` in this process, with its runtime bound."""
    settings = hooks.settings
    # Reads never hang on a lost primary: RQ's longest blocking call (its
    # dequeue, worker_ttl - 15 s = maintenance_interval) plus a margin.
    connection = redis_client(
        settings.redis_url,
        socket_timeout=settings.maintenance_interval + 10,
        socket_connect_timeout=5,
    )
    queue = Queue(settings.queue, connection=connection)
    runtime = jobs.Runtime(
        registry=hooks.registry, settings=settings, connection=connection, queue=queue
    )
    jobs.bind(runtime)
    worker = LaneWorker(
        [queue],
        connection=connection,
        maintenance_interval=settings.maintenance_interval,
        worker_ttl=settings.maintenance_interval + 15,
    )
    worker.heartbeat_ttl = settings.heartbeat_ttl
    worker.runtime = runtime
    return worker, runtime


def work(hooks: RedoHooks, options: WorkerOptions) -> int:
    """Run one worker in this process until stopped (or drained, in burst mode).

    RQ's loop retries a lost connection only while it waits for a job; any
    other Redis error (a failover under way, say) ends it. Then a fresh
    worker starts after a pause, for as long as it takes Redis to come back:
    what the dead one held is rescued by maintenance, as after a crash.
    """
    pause = 0.5
    while True:
        worker: LaneWorker | None = None
        try:
            worker, runtime = build(hooks)
            worker.grace_period = options.grace_period
            log.info(
                "worker_started",
                worker=worker.name,
                queue=runtime.queue.name,
                redis=hooks.settings.redis_url_safe,
                burst=options.burst,
                handlers=len(hooks.registry),
            )
            check_policy(Memory.from_info(runtime.connection.info("memory")), "worker")
            if options.burst:
                drain_burst(worker, runtime, options.rq_log_level)
                return 0
            promoting = worker.start_promoter()
            try:
                worker.work(logging_level=options.rq_log_level)
            finally:
                promoting.set()
        except (RedisError, OSError) as exc:
            if worker is not None and worker.stop_asked:
                # Stopping, and RQ's teardown could not reach Redis: the
                # worker's key expires by itself.
                log.warning("worker_stopped_without_teardown", error=type(exc).__name__)
                return 0
            if options.burst:
                log.error("worker_lost_redis", error=type(exc).__name__)
                return 1
            log.error(
                "worker_lost_redis", error=type(exc).__name__, detail=str(exc)[:200], retry_in=pause
            )
        else:
            if worker._stop_requested or worker.stop_asked:
                return 0
            log.error("worker_loop_ended", retry_in=pause)
        if _pause_unless_stopped(pause):
            return 0
        pause = min(pause * 2, 10.0)


def _pause_unless_stopped(seconds: float) -> bool:
    """Sleep ``seconds``; ``True`` if SIGTERM or SIGINT came meanwhile (RQ's handlers are gone)."""
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return stopped.wait(seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def drain_burst(
    worker: LaneWorker, runtime: jobs.Runtime, log_level: str, deadline: float | None = None
) -> None:
    """Work in burst mode until nothing is queued or scheduled (or a stop is asked).

    Scheduled retries are moved onto the queue as they come due. Raises
    ``RedoHooksError`` when ``deadline`` (a ``time.monotonic()`` value) passes.
    """
    while True:
        worker.work(burst=True, logging_level=log_level)
        if worker._stop_requested:
            return
        if not promote_scheduled(runtime.connection, runtime.queue, wait=True):
            return
        if deadline is not None and time.monotonic() > deadline:
            raise RedoHooksError("the queue did not drain in time")


def promote_scheduled(connection: Redis, queue: Queue, *, wait: bool) -> bool:
    """Move due scheduled jobs onto the queue; ``False`` when none is scheduled.

    With ``wait``, sleeps until the earliest scheduled job is due. Each job is
    taken with a ZREM that only one caller can win, so concurrent burst
    workers never enqueue the same job twice.
    """
    registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
    while True:
        earliest = connection.zrange(registry.key, 0, 0, withscores=True)
        if not earliest:
            return False
        due_in = float(earliest[0][1]) - time.time()
        if due_in <= 0:
            break
        if not wait:
            return True
        time.sleep(min(due_in, 0.25))
    for job_id in registry.get_jobs_to_schedule():
        if connection.zrem(registry.key, job_id):
            job = Job.fetch(job_id, connection=connection)
            queue.enqueue_job(job)
    return True


def run(hooks: RedoHooks, options: WorkerOptions) -> int:
    """Run ``options.concurrency`` worker processes; return the exit code."""
    if options.concurrency <= 1:
        return work(hooks, options)
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_child, args=(hooks, options), name=f"redo-hooks-worker-{i}")
        for i in range(options.concurrency)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for child in children:
        child.join()
        code = code or (child.exitcode or 0)
    return code


def _child(hooks: RedoHooks, options: WorkerOptions) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(work(hooks, options))
