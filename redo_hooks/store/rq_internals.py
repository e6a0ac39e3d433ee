"""Every place redo-hooks relies on RQ beyond its documented API, in one room.

RQ is the job runtime (``rq info`` and RQ's registries see every lane job),
but the atomic ingest, the in-process worker and the promoter need a few of
its internals. Each is listed here with what it relies on and why; nothing
outside this module touches them. ``tests/test_rq_internals.py`` checks every
assumption against the installed rq, and ``scripts/check-rq-upgrade`` runs the
same checks against the newest rq 2.x, so an upgrade fails loudly, not subtly.
They are why ``pyproject.toml`` pins ``rq<2.13``. Items 3, 7, 8 and 11's
registry reads and writes are in ``store/rq_registries.py``.

1. **The queued job hash** (``LaneJobTemplate``): ``ingest.lua`` writes the
   job hash, the queue entry and ``rq:queues`` itself, atomically with the
   dedupe mark and the lane. The fields are RQ's own ``Job.to_dict()``, with
   ``_status`` set to ``queued`` as ``Queue._prepare_for_queue`` does; the
   key prefixes are ``Job.redis_job_namespace_prefix``,
   ``Queue.redis_queue_namespace_prefix`` and ``Queue.redis_queues_keys``.
2. **The lane job's function name** (``LANE_FUNC``): job hashes in Redis name
   it, so it never changes across releases (``redo_hooks.jobs`` keeps it).
3. **Scheduling inside a transaction** (``schedule``):
   ``ScheduledJobRegistry.schedule`` ignores the pipeline it is given, so the
   ZADD is repeated inside ours to commit the schedule with the lanes.
4. **The in-process worker** (``WorkerBase``): ``SimpleWorker`` sets a running
   job's heartbeat to its whole timeout + 60 s (``get_heartbeat_ttl``) and
   never renews it; we renew a short one from a thread with
   ``maintain_heartbeats``. A warm stop is signalled through
   ``handle_warm_shutdown_request`` and seen in ``_stop_requested``; a second
   SIGTERM within 1 s is ignored by ``request_force_stop``.
5. **Stopping while idle** (``WorkerBase.teardown``): RQ raises
   ``StopRequested`` from its signal handler, wherever the main thread is —
   possibly between two replies of a pipeline, leaving replies unread on a
   pooled connection, so teardown's own pipeline read them ("Wrong number of
   response items from pipeline execution") and the worker exited 1. Teardown
   first drops every pooled connection.
6. **Maintenance** (``WorkerBase.clean_registries``): RQ's ``clean_registries``
   (the steps of ``BaseWorker.clean_registries``, repeated so the
   intermediate list's can be held back while a live worker is frozen) runs under
   ``Queue.acquire_maintenance_lock``, a ``SET NX`` on ``registry_cleaning_key``
   for 899 s: a worker killed inside a pass switched crash recovery off for
   15 minutes. ``MaintainedQueue`` takes the same lock for ``lock_ttl``
   seconds instead, valued with its holder so a dead holder's parent releases
   it at once. Ours runs after RQ's, and rescues jobs a dead worker left
   in ``queue.intermediate_queue`` (``get_first_seen``/``set_first_seen``)
   with ``handle_job_failure``.
7. **Read-only counts** (``registry_counts``): a registry's ``count``
   *cleans* it first (re-queueing abandoned jobs as a side effect), so
   operator reads take ``ZCARD`` of the registries' keys instead.
8. **Promoting scheduled jobs** (``earliest_scheduled``, ``take_due``): in
   place of RQ's scheduler process (which rebuilds its own connection and so
   cannot follow a Sentinel failover), workers read the scheduled registry,
   a sorted set of job ids scored by due time, themselves.
9. **Job slots** (``WorkerBase.for_thread``): a worker process runs several
   RQ workers, one per thread. RQ installs signal handlers in ``work()``
   (``_install_signal_handlers``), which only the main thread may do, and
   times jobs out with SIGALRM (``UnixSignalDeathPenalty``); a slot thread
   skips the first and uses ``TimerDeathPenalty``. RQ's idle loop
   (``dequeue_job_and_maintain_ttl``) only leaves on a job or on an exception
   from the signal handler, so a slot waits on the queue 1 s at a time
   (``dequeue_timeout``) and its ``heartbeat``, called before each wait,
   raises ``StopRequested`` once a stop was asked.
10. **A rescued job's dead execution** (``WorkerBase.handle_job_success``):
   the job's execution registry (``job.execution_registry``, a zset of
   execution ids scored 60 s past their last heartbeat) still lists the dead
   worker's execution after its hash (``rq:execution:<job>:<id>``) expired,
   and RQ's success handling fetches every listed execution: ``ValueError:
   Execution … not found``, the finished job retried and failed. Ids whose
   hash is gone are pruned first.
11. **Heartbeats from outside the process** (``WorkerBase.runs_key``,
   ``vouch``, ``abandon``): a handler that holds the GIL starves the beat
   thread, and RQ took its job for abandoned while it ran. A supervised
   worker lists its running executions (``Execution.composite_key``, the
   member of ``StartedJobRegistry``) in a set, and its parent renews what
   ``maintain_heartbeats`` renews for them: the started registry's score,
   the ``rq:execution:`` hash's TTL and the job's ``ExecutionRegistry``
   score (``ttl + 60`` s, as RQ's ``add``).
12. **Unsubscribing** (``WorkerBase.unsubscribe``): RQ's teardown unsubscribes,
   then stops redis-py's ``PubSubWorkerThread`` (``sleep_time=60``), whose
   ``stop()`` joins it since redis-py 8.2: a thread already waiting again
   held every worker exit up to a minute. Its run flag (``_running``, an
   ``Event`` in every redis-py we support) is cleared first, so the
   UNSUBSCRIBE's reply ends its last wait, and the join is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from datetime import timedelta
from types import FrameType
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus, Retry
from rq.registry import clean_registries
from rq.timeouts import TimerDeathPenalty
from rq.utils import now, utcformat
from rq.worker_registration import clean_worker_registry

from .replies import text

#: The function every lane job runs. Stable across releases: RQ job hashes
#: already in Redis name it (``redo_hooks/jobs.py`` forwards it).
LANE_FUNC = "redo_hooks.jobs.run_lane"

#: ``rq:job:``, ``rq:queue:`` and the set of queue keys RQ keeps.
JOB_KEY_PREFIX: str = Job.redis_job_namespace_prefix
QUEUE_KEY_PREFIX: str = Queue.redis_queue_namespace_prefix
QUEUES_KEY: str = Queue.redis_queues_keys

# Lane jobs keep no result: a finished job hash is only residue (8 KB each
# with RQ's default 500 s), and nothing depends on it.
RESULT_TTL = 0
# Crash recovery: RQ re-queues an abandoned job while it has retries left;
# handler exceptions are counted per event by the lane itself.
CRASH_RETRIES = 10


class MaintainedQueue(Queue):  # rq is untyped: Queue is Any to mypy
    """RQ's ``Queue`` whose maintenance lock outlives a dead holder by ``lock_ttl`` s only (6).

    The lock's value names its holder (``holder``: the worker process's
    ``Keys.runs``), so the parent of a process that died holding it releases
    it at once (``rq_registries.abandon``).
    """

    #: Seconds the maintenance lock lasts if its holder never releases it.
    lock_ttl = 30
    #: Who takes the lock (RQ itself writes ``1``).
    holder = "1"

    def acquire_maintenance_lock(self) -> bool:
        """The lock RQ's maintenance takes, for ``lock_ttl`` seconds instead of 899."""
        return bool(
            self.connection.set(self.registry_cleaning_key, self.holder, nx=True, ex=self.lock_ttl)
        )


def new_job_id() -> str:
    """A job id RQ accepts (``[A-Za-z0-9_-]+``)."""
    return "rh-" + uuid.uuid4().hex


def queue_key(queue: str) -> str:
    """The Redis list RQ keeps ``queue``'s job ids in."""
    return QUEUE_KEY_PREFIX + queue


def lane_job(
    connection: Redis,
    queue: str,
    handler: str,
    *,
    job_id: str | None = None,
    timeout: int,
) -> Job:
    """An unsaved RQ job that runs lanes of ``handler`` (listed in Redis)."""
    return Job.create(
        LANE_FUNC,
        args=(handler,),
        connection=connection,
        id=job_id or new_job_id(),
        timeout=timeout,
        result_ttl=RESULT_TTL,
        retry=Retry(max=CRASH_RETRIES),
        origin=queue,
        description=f"lanes of {handler}",
    )


class LaneJobTemplate:
    """The hash of a handler's queued lane job, for ``ingest.lua`` to write.

    A lane job's arguments are only the handler's name (its lanes are listed
    in Redis), so the hash is the same for every job of a handler but for id
    and times: built once by RQ itself, the script adds the times.
    """

    VARYING = frozenset({"created_at", "enqueued_at"})

    def __init__(self, connection: Redis, queue: str, handler: str, *, timeout: int) -> None:
        job = lane_job(connection, queue, handler, job_id="template", timeout=timeout)
        flat = queued_fields(job)
        self.fields: list[Any] = []
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            if field not in self.VARYING:
                self.fields += [field, value]


def rq_timestamp() -> str:
    """Now, formatted as RQ stores ``created_at`` and ``enqueued_at``."""
    return str(utcformat(now()))


def queued_fields(job: Job) -> list[Any]:
    """Flattened ``field, value, ...`` of the job's hash as ``Queue.enqueue`` saves it."""
    job.enqueued_at = now()
    job._status = JobStatus.QUEUED  # (1) what Queue._prepare_for_queue sets
    flat: list[Any] = []
    for field, value in job.to_dict().items():
        flat.append(field)
        flat.append(value)
    return flat


#: (11) Executions running in this process, whichever of its workers runs them.
_RUNNING: set[str] = set()


def forget_ended(connection: Redis, runs_key: str) -> int:
    """(11) Unlist the executions this process no longer runs; return how many.

    An execution stays listed if Redis was lost as it ended; its parent would
    then vouch for a job nobody runs, and it would never be re-run. The
    process's own beat calls this every quarter of ``heartbeat_ttl``.
    """
    ended = {text(m) for m in connection.smembers(runs_key)} - _RUNNING
    if ended:
        connection.srem(runs_key, *ended)
    return len(ended)


class WorkerBase(SimpleWorker):  # rq is untyped: SimpleWorker is Any to mypy
    """RQ's ``SimpleWorker`` with its internals turned into plain hooks (4-6).

    Subclasses set ``heartbeat_ttl`` and override :meth:`on_stop_requested`
    and :meth:`maintenance`; they never touch RQ's private names.
    """

    #: Seconds a running job's heartbeat lasts; renewed every quarter of it.
    heartbeat_ttl = 20
    #: Jobs this worker has run.
    jobs_run = 0
    #: False for a worker in a thread other than the main one (a job slot).
    signal_handlers = True
    #: Seconds one wait on the queue lasts; None: RQ's (worker_ttl - 15).
    idle_wait: int | None = None
    #: The job (and its queue) this worker is running, if any.
    running: tuple[Job, Queue] | None = None
    #: (11) The set this worker lists its running executions in, for the
    #: parent process to renew their heartbeats; None: unsupervised.
    runs_key: str | None = None
    #: (11) The execution this worker listed there and is running.
    listed: str | None = None

    def for_thread(self) -> None:
        """(9) Make this worker fit to run in a thread other than the main one."""
        self.signal_handlers = False
        self.idle_wait = 1
        self.death_penalty_class = TimerDeathPenalty

    @property
    def stop_requested(self) -> bool:
        """Whether RQ was asked to stop (warm) after the job in hand."""
        return bool(self._stop_requested)

    def on_stop_requested(self) -> None:
        """Called once on the first SIGTERM/SIGINT (a warm stop)."""

    def on_cold_stop(self) -> None:
        """Called just before a cold stop ends the process (RQ fails the main job itself)."""

    def fail_running_job(self, why: str) -> None:
        """Fail the job this worker is running, so that RQ retries it at once."""
        running = self.running
        if running is not None:
            self.handle_job_failure(running[0], running[1], exc_string=why)

    def stop_soon(self) -> None:
        """(4) Stop at the loop's next check, as RQ's own handler does when busy."""
        self._stop_requested = True
        self.on_stop_requested()

    def maintenance(self, queue: Queue) -> None:
        """Called after RQ's registry maintenance, under its maintenance lock."""

    def force_stop_after(self, seconds: float) -> None:
        """Turn the warm stop into a cold one after ``seconds`` (a second SIGTERM)."""
        # (4) RQ ignores a second signal within 1 s of the first.
        timer = threading.Timer(max(seconds, 1.1), os.kill, args=(os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()

    # -- RQ's hooks -----------------------------------------------------------

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """(4) RQ's cold stop (a second signal), after :meth:`on_cold_stop`."""
        if self._shutdown_requested_date and now() - self._shutdown_requested_date > timedelta(
            seconds=1
        ):
            self.on_cold_stop()
        super().request_force_stop(signum, frame)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any) -> None:
        """(10) RQ's success handling, after pruning executions of workers that died."""
        registry_key = job.execution_registry.key
        ids = [text(i) for i in self.connection.zrange(registry_key, 0, -1)]
        if ids:
            with self.connection.pipeline(transaction=False) as pipe:
                for execution_id in ids:
                    # (a hash a late heartbeat recreated holds no created_at)
                    pipe.hexists(f"rq:execution:{job.id}:{execution_id}", "created_at")
                alive = pipe.execute()
            dead = [i for i, exists in zip(ids, alive, strict=True) if not exists]
            if dead:
                self.connection.zrem(registry_key, *dead)
        super().handle_job_success(job, queue, started_job_registry)

    def _install_signal_handlers(self) -> None:
        """(9) RQ's SIGTERM/SIGINT handlers, in the main thread's worker only."""
        if self.signal_handlers:
            super()._install_signal_handlers()  # type: ignore[no-untyped-call]

    @property
    def dequeue_timeout(self) -> int:
        """(9) Seconds one blocking wait on the queue lasts."""
        return self.idle_wait or int(super().dequeue_timeout)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """(9) RQ's heartbeat; in a slot thread, also the way out of its idle loop."""
        if not self.signal_handlers and self._stop_requested and pipeline is None:
            raise StopRequested
        super().heartbeat(timeout, pipeline=pipeline)

    def get_heartbeat_ttl(self, job: Job) -> int:
        """(4) Seconds a running job's heartbeat lasts."""
        return self.heartbeat_ttl

    def handle_warm_shutdown_request(self) -> None:
        """(4) RQ calls this from its SIGTERM/SIGINT handler."""
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.on_stop_requested()

    def prepare_execution(self, job: Job) -> Any:
        """(11) RQ's execution record, then its listing for the parent's heartbeats."""
        execution = super().prepare_execution(job)
        if self.runs_key is not None:
            self.listed = execution.composite_key
            _RUNNING.add(self.listed)
            self.connection.sadd(self.runs_key, self.listed)
        return execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        """(4) Run ``job`` in this process, renewing its heartbeat meanwhile."""
        self.jobs_run += 1
        self.running = (job, queue)
        done = threading.Event()
        beats = threading.Thread(target=self._beat, args=(job, done), daemon=True)
        beats.start()
        try:
            super().execute_job(job, queue)
        finally:
            self.running = None
            done.set()
            beats.join()
            # (RQ has dropped self.execution by now: the listing is kept aside.)
            listed, self.listed = self.listed, None
            if self.runs_key is not None and listed is not None:
                _RUNNING.discard(listed)
                try:
                    self.connection.srem(self.runs_key, listed)
                except (RedisError, OSError):  # unlisted later, by forget_ended
                    self.log.warning("could not unlist execution %s", listed)

    def _beat(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_ttl / 4):
            try:
                self.maintain_heartbeats(job)
            except Exception:  # a missed beat is retried; never kill the job
                self.log.warning("heartbeat failed for job %s", job.id, exc_info=True)

    def teardown(self) -> None:
        """(5) Drop pooled connections (one may hold unread replies), then RQ's teardown."""
        self.connection.connection_pool.disconnect(inuse_connections=False)
        super().teardown()  # type: ignore[no-untyped-call]

    def unsubscribe(self) -> None:
        """(12) RQ's, without waiting up to 60 s for the listening thread under redis-py 8.2."""
        thread = self.pubsub_thread
        if not thread:
            return
        running = getattr(thread, "_running", None)
        if isinstance(running, threading.Event):
            running.clear()  # its current wait is its last: the reply below ends it
        with contextlib.suppress(RedisError, OSError):  # (or it closed the connection first)
            self.pubsub.unsubscribe()
        thread.join(timeout=5)
        self.pubsub.close()

    def taken_jobs_may_be_alive(self) -> bool:
        """Whether a job in the intermediate list may belong to a live (frozen) worker."""
        return False

    def on_stranded_rescued(self, job_id: str) -> None:
        """Called for each job :meth:`rescue_stranded` fails so that RQ runs it again."""

    def clean_registries(self) -> None:
        """(6) RQ's maintenance, then ours, under one lock.

        RQ's own steps, then ours. Both rescues of jobs left in the
        intermediate list (RQ's after a minute, ours after ``heartbeat_ttl``)
        are skipped while :meth:`taken_jobs_may_be_alive`: a live worker
        process frozen in a GIL-holding handler may have taken a job (its
        slot's blocking wait served by Redis) and will start it when it wakes.
        """
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                try:
                    clean_registries(queue, self._exc_handlers)
                    clean_worker_registry(queue)
                    if not self.taken_jobs_may_be_alive():
                        queue.intermediate_queue.cleanup(self, queue)
                        self.rescue_stranded(queue, self.heartbeat_ttl)
                    self.maintenance(queue)
                finally:
                    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        self.last_cleaned_at = now()  # type: ignore[assignment] # rq: Optional[datetime]

    def rescue_stranded(self, queue: Queue, older_than: float) -> None:
        """(6) Fail jobs a dead worker took from the queue but never started.

        A worker that dies right after taking a job (BLMOVE) and before
        starting it leaves the job in RQ's intermediate list, which RQ clears
        only after a minute. A live worker moves a job from there to the
        started registry within milliseconds, so after ``older_than`` seconds
        such a job is treated like a crashed one: failed, so RQ retries it.
        """
        intermediate = queue.intermediate_queue
        for job_id in intermediate.get_job_ids():
            if job_id in queue.started_job_registry:
                continue
            first_seen = intermediate.get_first_seen(job_id)
            if first_seen is None:
                intermediate.set_first_seen(job_id)
                continue
            if now() - first_seen <= timedelta(seconds=older_than):
                continue
            job = queue.fetch_job(job_id)
            if job is not None:
                self.on_stranded_rescued(job_id)
                self.handle_job_failure(
                    job, queue, exc_string="taken from the queue by a worker that died"
                )
            intermediate.remove(job_id)
