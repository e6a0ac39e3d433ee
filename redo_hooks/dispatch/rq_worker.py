"""The RQ worker redo-hooks runs lane jobs in: RQ's records, our loop (items 4, 6, 9-11).

RQ keeps the records (the worker's registration and heartbeat, each job's
execution, started, finished and failed registries, retries); this module
runs the loop that drives them, through RQ's public methods, in place of
``Worker.work()``: a process runs several workers in threads (job slots),
each stops at a flag its process's signal handler sets, a job's short
heartbeat is renewed from a thread (and by the parent process), and
maintenance takes a lock that outlives a dead holder briefly. Three RQ
methods are still overridden; every use of RQ beyond its public API is
numbered and explained in ``store/rq_internals.py``'s docstring.
``tests/test_rq_internals.py`` pins each one against the installed rq, and
``scripts/check-rq-upgrade`` against the other major.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.exceptions import DequeueTimeout
from rq.job import Job, JobStatus
from rq.logutils import setup_loghandlers
from rq.registry import clean_registries
from rq.suspension import is_suspended
from rq.timeouts import TimerDeathPenalty
from rq.utils import now
from rq.worker import WorkerStatus
from rq.worker_registration import clean_worker_registry

from ..backoff import exponential
from ..store.replies import text
from ..store.rq_internals import RQ_MAJOR

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


#: Seconds one wait on the queue lasts: a stop is seen at most this late when idle.
IDLE_WAIT = 1
#: Seconds between two tries to reach Redis while waiting for a job: base, cap.
RECONNECT_WAIT = (1.0, 30.0)


class WorkerBase(SimpleWorker):  # rq is untyped: SimpleWorker is Any to mypy
    """RQ's ``SimpleWorker`` records, driven by a loop of our own (:meth:`run`).

    Subclasses set ``heartbeat_ttl`` and override :meth:`on_stop_requested`
    and :meth:`maintenance`; they never touch RQ's private names.
    """

    #: Seconds a running job's heartbeat lasts; renewed every quarter of it.
    heartbeat_ttl = 20
    #: Jobs this worker has run.
    jobs_run = 0
    #: The job (and its queue) this worker is running, if any.
    running: tuple[Job, Queue] | None = None
    #: (11) The set this worker lists its running executions in, for the
    #: parent process to renew their heartbeats; None: unsupervised.
    runs_key: str | None = None
    #: (11) The execution this worker listed there and is running.
    listed: str | None = None
    #: (4) The execution whose heartbeat this worker renews (rq 3 passes it).
    beating: Any = None
    #: (6) Seconds the maintenance lock lasts if its holder never releases it.
    lock_ttl = 30
    #: (6) The lock's value: the process's ``Keys.runs``, so that the parent
    #: of a process that died holding it releases it (``rq_registries.abandon``).
    lock_holder = "1"
    #: Waits on the queue in a row that could not reach Redis.
    lost_waits = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Set once a stop was asked: the worker ends after the job in hand.
        self.stopping = threading.Event()

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked (this worker ends after the job in hand)."""
        return self.stopping.is_set()

    def in_thread(self) -> None:
        """(9) Make this worker fit to run in a thread other than the main one.

        RQ times a job out with SIGALRM, which only the main thread receives;
        lane jobs have no RQ timeout (``NO_TIMEOUT``), so it is never armed,
        but the thread-safe penalty is set all the same.
        """
        self.death_penalty_class = TimerDeathPenalty

    def on_stop_requested(self) -> None:
        """Called once, when a stop is first asked (:meth:`stop_soon`)."""

    def on_cold_stop(self) -> None:
        """Called just before a cold stop ends the process (see :meth:`stop_cold`)."""

    def stop_soon(self) -> None:
        """End the loop after the job in hand (a warm stop); idle, within ``IDLE_WAIT`` s."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.on_stop_requested()

    def stop_cold(self) -> None:
        """End the process now (a second SIGTERM): the running jobs fail, so RQ retries them.

        Called from the main thread's signal handler: the ``SystemExit`` is
        raised wherever that thread is. In a job, RQ's ``perform_job`` fails
        it (RQ retries it at once) and the loop then ends, as it was asked to
        stop; idle, it ends the loop at once.
        """
        self.stopping.set()
        self.on_cold_stop()
        raise SystemExit(0)

    def fail_running_job(self, why: str) -> None:
        """Fail the job this worker is running, so that RQ retries it at once."""
        running = self.running
        if running is not None:
            self.handle_job_failure(running[0], running[1], exc_string=why)

    def force_stop_after(self, seconds: float) -> None:
        """Turn the warm stop into a cold one after ``seconds`` (a second SIGTERM)."""
        # A second signal within 1 s of the first is taken for the same one.
        timer = threading.Timer(max(seconds, 1.1), os.kill, args=(os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()

    def maintenance(self, queue: Queue) -> None:
        """Called after RQ's registry maintenance, under the queue's maintenance lock."""

    # -- the loop -------------------------------------------------------------

    def run(
        self, *, burst: bool = False, max_jobs: int | None = None, log_level: str = "WARNING"
    ) -> bool:
        """Take jobs and run them until stopped (or, with ``burst``, until the queues are empty).

        What ``Worker.work()`` does, through RQ's public methods: register,
        beat before each wait, run maintenance when due, take a job
        (``Queue.dequeue_any``), run it (``execute_job``), register the
        worker's death. A stop is a flag (:meth:`stop_soon`) checked between
        jobs and between waits of ``IDLE_WAIT`` s, never an exception raised
        into the thread wherever it is. Returns whether a job was run.
        """
        for logger in ("rq.worker", "rq.job"):  # (as RQ's own loop sets them up)
            setup_loghandlers(log_level, name=logger)
        self.register_birth()  # type: ignore[no-untyped-call]
        self.set_state(WorkerStatus.IDLE)  # (and again after each job, by execute_job)
        done = 0
        try:
            done = self._jobs(burst, max_jobs)
        except (RedisError, OSError):
            raise  # the caller starts a fresh worker after a pause
        except Exception:  # as RQ's loop: logged, and the loop ends
            self.log.error("worker %s: unhandled exception, leaving", self.name, exc_info=True)
        except BaseException:
            # A cold stop may have cut a pipeline short on a pooled connection:
            # its unread replies must not meet the next command.
            self.connection.connection_pool.disconnect(inuse_connections=False)
            raise
        finally:
            with contextlib.suppress(RedisError, OSError):  # (its key expires by itself)
                self.register_death()  # type: ignore[no-untyped-call]
        return done > 0

    def _jobs(self, burst: bool, max_jobs: int | None) -> int:
        """The loop itself; returns how many jobs it ran."""
        done = 0
        while not self.stopping.is_set():
            if is_suspended(self.connection, self):  # `rq suspend`
                if burst or self.stopping.wait(1):
                    break
                continue
            if self.should_run_maintenance_tasks:
                self.run_maintenance()
            if self.stopping.is_set():
                break
            taken = self.take(None if burst else IDLE_WAIT)
            if taken is None:
                if burst:
                    break
                continue
            self.run_job(*taken)
            self.heartbeat()
            done += 1
            if max_jobs is not None and done >= max_jobs:
                break
        return done

    def take(self, timeout: int | None) -> tuple[Job, Queue] | None:
        """One wait for a job on the worker's queues; None if none came in ``timeout`` s.

        A lost connection is retried (the wait is then None), as RQ's loop
        does: the job slots of a process outlive a Redis failover.
        """
        taken: tuple[Job, Queue] | None = None
        try:
            self.heartbeat()
            taken = self.queue_class.dequeue_any(
                self.queues,
                timeout,
                connection=self.connection,
                job_class=self.job_class,
                serializer=self.serializer,
                death_penalty_class=self.death_penalty_class,
            )
        except DequeueTimeout:
            pass
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.lost_waits += 1
            pause = exponential(self.lost_waits, *RECONNECT_WAIT, jitter=False)
            self.log.error("Redis unreachable (%s): retrying in %.0f s", exc, pause)
            self.stopping.wait(pause)
            return None
        self.lost_waits = 0
        return taken

    def run_job(self, job: Job, queue: Queue) -> None:
        """(4) Run ``job`` in this thread (``execute_job``), renewing its heartbeat meanwhile."""
        self.jobs_run += 1
        self.running = (job, queue)
        done = threading.Event()
        beats = threading.Thread(target=self._beat, args=(job, done), daemon=True)
        beats.start()
        try:
            self.execute_job(job, queue)
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

    def run_maintenance(self) -> None:
        """(6) RQ's registry maintenance, then ours, under one lock per queue.

        RQ's own steps (``BaseWorker.clean_registries``), then ours. Both
        rescues of jobs left in the intermediate list (RQ's after a minute,
        ours after ``heartbeat_ttl``) are skipped while
        :meth:`taken_jobs_may_be_alive`: a live worker process frozen in a
        GIL-holding handler may have taken a job (its slot's blocking wait
        served by Redis) and will start it when it wakes. The lock is RQ's
        key (``registry_cleaning_key``), held for ``lock_ttl`` s, not RQ's
        899: a worker killed inside a pass would switch crash recovery off
        for 15 minutes.
        """
        for queue in self.queues:
            if self.take_maintenance_lock(queue):
                try:
                    clean_registries(queue)
                    clean_worker_registry(queue)
                    if not self.taken_jobs_may_be_alive():
                        queue.intermediate_queue.cleanup(self, queue)
                        self.rescue_stranded(queue, self.heartbeat_ttl)
                    self.maintenance(queue)
                finally:
                    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
        self.last_cleaned_at = now()  # type: ignore[assignment] # rq: Optional[datetime]

    def take_maintenance_lock(self, queue: Queue) -> bool:
        """(6) RQ's maintenance lock on ``queue``, for ``lock_ttl`` s, valued ``lock_holder``.

        The key RQ's ``Queue.acquire_maintenance_lock`` sets, so a pass of
        ours and one of a stock RQ worker exclude each other.
        """
        lock = queue.registry_cleaning_key
        return bool(self.connection.set(lock, self.lock_holder, nx=True, ex=self.lock_ttl))

    # -- RQ's hooks -----------------------------------------------------------

    def get_heartbeat_ttl(self, job: Job, *rest: Any, **more: Any) -> int:
        """(4) Seconds a running job's heartbeat lasts (rq 3 also passes the time worked)."""
        return self.heartbeat_ttl

    def prepare_execution(self, job: Job) -> Any:
        """(11) RQ's execution record, then its listing for the parent's heartbeats."""
        execution = super().prepare_execution(job)
        self.beating = execution
        if self.runs_key is not None:
            self.listed = execution.composite_key
            _RUNNING.add(self.listed)
            self.connection.sadd(self.runs_key, self.listed)
        return execution

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

    def taken_jobs_may_be_alive(self) -> bool:
        """Whether a job in the intermediate list may belong to a live (frozen) worker."""
        return False

    def on_stranded_rescued(self, job_id: str) -> None:
        """Called for each job :meth:`rescue_stranded` fails so that RQ runs it again."""

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
