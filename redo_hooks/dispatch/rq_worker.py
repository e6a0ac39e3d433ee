"""The RQ worker redo-hooks runs lane jobs in, with RQ's internals it needs (items 4-6, 9-12).

Every use of RQ beyond its public API is numbered and explained in
``store/rq_internals.py``'s docstring; this module holds the worker's
share of them: short heartbeats renewed from a thread, job slots in threads,
a maintenance lock that outlives a dead holder briefly, and the teardown and
success-handling fixes. ``tests/test_rq_internals.py`` pins each one against
the installed rq, and ``scripts/check-rq-upgrade`` against the other major.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from datetime import timedelta
from types import FrameType
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus
from rq.registry import clean_registries
from rq.timeouts import TimerDeathPenalty
from rq.utils import now
from rq.worker_registration import clean_worker_registry

from ..store.replies import text
from ..store.rq_internals import RQ_MAJOR


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


#: Seconds the main thread's wait on the queue lasts (see ``WorkerBase.dequeue_timeout``).
MAIN_IDLE_WAIT = 5


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
    #: Seconds one wait on the queue lasts; None: ``MAIN_IDLE_WAIT``.
    idle_wait: int | None = None
    #: The job (and its queue) this worker is running, if any.
    running: tuple[Job, Queue] | None = None
    #: (11) The set this worker lists its running executions in, for the
    #: parent process to renew their heartbeats; None: unsupervised.
    runs_key: str | None = None
    #: (11) The execution this worker listed there and is running.
    listed: str | None = None
    #: (4) The execution whose heartbeat this worker renews (rq 3 passes it).
    beating: Any = None
    #: When RQ's signal handler asked for a warm stop (``time.monotonic()``).
    stop_asked_at: float | None = None

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
        # RQ ignores a second signal within 1 s of the first: so do we.
        if self.stop_asked_at is not None and time.monotonic() - self.stop_asked_at > 1:
            self.on_cold_stop()
        super().request_force_stop(signum, frame)

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: Any, *rest: Any, **more: Any
    ) -> None:
        """(10) RQ's success handling, after pruning executions of workers that died.

        rq 3 also passes the execution that ran (``rest``).
        """
        self._prune_dead_executions(job)
        super().handle_job_success(job, queue, started_job_registry, *rest, **more)

    def _prune_dead_executions(self, job: Job) -> None:
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

    def _install_signal_handlers(self) -> None:
        """(9) RQ's SIGTERM/SIGINT handlers, in the main thread's worker only."""
        if self.signal_handlers:
            super()._install_signal_handlers()  # type: ignore[no-untyped-call]

    @property
    def dequeue_timeout(self) -> int:
        """(9) Seconds one blocking wait on the queue lasts.

        Not RQ's (``worker_ttl - 15``, 405 s): RQ's SIGTERM handler stops an
        idle worker by raising ``StopRequested`` wherever the main thread is,
        and code that swallows exceptions (``logging``'s ``emit``, while
        maintenance logs) loses it. The next heartbeat, before the next wait,
        takes the stop up again (:meth:`heartbeat`): at most one short wait
        later, not minutes.
        """
        return self.idle_wait or min(MAIN_IDLE_WAIT, int(super().dequeue_timeout))

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """(9) RQ's heartbeat; also the way out of the idle loop once a stop was asked.

        For a slot thread, the only way out (no signal reaches it). For the
        main thread, the way out when the ``StopRequested`` RQ's signal
        handler raised was swallowed (see :attr:`dequeue_timeout`).

        RQ beats before each wait on the queue and once more after a wait
        that took a job. Raising then would strand that job in RQ's
        intermediate list (until maintenance rescues it), so the way out is
        taken only when the caller's ``result`` (the job taken) is None: a
        job taken as a stop was asked runs, and its lanes are handed on.
        """
        asked = self._stop_requested or self.stop_asked_at is not None
        stopping = asked and pipeline is None
        if stopping and sys._getframe(1).f_locals.get("result") is None:
            raise StopRequested
        super().heartbeat(timeout, pipeline=pipeline)

    def get_heartbeat_ttl(self, job: Job, *rest: Any, **more: Any) -> int:
        """(4) Seconds a running job's heartbeat lasts (rq 3 also passes the time worked)."""
        return self.heartbeat_ttl

    def handle_warm_shutdown_request(self) -> None:
        """(4) RQ calls this from its SIGTERM/SIGINT handler."""
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.stop_asked_at = time.monotonic()
        self.on_stop_requested()

    def prepare_execution(self, job: Job) -> Any:
        """(11) RQ's execution record, then its listing for the parent's heartbeats."""
        execution = super().prepare_execution(job)
        self.beating = execution
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
                # rq 3 is handed the execution to renew; rq 2 reads it from the worker.
                execution = () if RQ_MAJOR < 3 else (self.beating,)
                self.maintain_heartbeats(job, *execution)
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
                    clean_registries(queue)  # (no exception handlers are pushed)
                    clean_worker_registry(queue)
                    if not self.taken_jobs_may_be_alive():
                        queue.intermediate_queue.cleanup(self, queue)
                        self.rescue_stranded(queue, self.heartbeat_ttl)
                    self.maintenance(queue)
                finally:
                    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        self.last_cleaned_at = now()  # type: ignore[assignment] # rq: Optional[datetime]

    def rescue_stranded(self, queue: Queue, older_than: float) -> None:
        """(6) Queue again the jobs a dead worker took from the queue but never started.

        A worker that dies right after taking a job (BLMOVE) and before
        starting it leaves the job in RQ's intermediate list, which RQ clears
        only after a minute. A live worker moves a job from there to the
        started registry within milliseconds, so after ``older_than`` seconds
        a job still saying ``queued`` is pushed onto its queue again, as it
        is: it never ran, so it is not a crash's re-run (which would charge
        its lanes a crash and quarantine them).
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
            intermediate.remove(job_id)
            if job is not None and job.get_status() == JobStatus.QUEUED:
                self.on_stranded_rescued(job_id)
                queue.enqueue_job(job)
