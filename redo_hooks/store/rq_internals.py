"""Every place redo-hooks relies on RQ beyond its documented API, listed in one room.

RQ is the job runtime (``rq info`` and RQ's registries see every lane job),
but the atomic ingest, the in-process worker and the promoter need a few of
its internals. Each is listed here with what it relies on and why. The job
layout is in this module; the registry reads and writes (items 3, 7, 8, 11)
in ``store/rq_registries.py``; the worker's (items 4, 6, 9-11) in
``dispatch/rq_worker.py``. ``tests/test_rq_internals.py`` checks every
assumption against the installed rq (3.x), and ``scripts/check-rq-upgrade``
against the newest rq 2.x, so an upgrade fails loudly, not subtly. Why RQ,
and what we replace of it: ``docs/decisions/0001-rq.md``.

1. **The job hash** (``LaneJobTemplate``): ``ingest.lua`` writes the queued
   job hash, the queue entry and ``rq:queues`` itself, atomically with the
   dedupe mark and the lane; ``jobs_promote.lua`` sets a due job's
   ``status`` and ``enqueued_at`` as ``Queue._enqueue_job`` does. The fields
   are RQ's own ``Job.to_dict()`` with ``status`` ``queued``; the key
   prefixes are ``Job.redis_job_namespace_prefix``,
   ``Queue.redis_queue_namespace_prefix`` and ``Queue.redis_queues_keys``.
2. **The lane job's function name** (``LANE_FUNC``): job hashes in Redis name
   it, so it never changes across releases (``redo_hooks.jobs`` keeps it).
3. **Scheduling inside a transaction** (``schedule``): rq 2's
   ``ScheduledJobRegistry.schedule`` ignores the pipeline it is given, so the
   ZADD is repeated inside ours to commit the schedule with the lanes (and
   with the fraction of a second RQ truncates); rq 3 honours the pipeline.
4. **The in-process worker** (``WorkerBase``): our own loop (``run``) drives
   a ``SimpleWorker`` through its public methods where ``Worker.work()``
   would (``register_birth``, ``heartbeat``, ``Queue.dequeue_any``,
   ``execute_job``, ``register_death``), so that a stop is a flag seen
   between jobs, never RQ's ``StopRequested`` raised into a thread wherever
   it is (inside ``logging``'s ``emit`` it was swallowed; between two
   replies of a pipeline it left them unread on a pooled connection), and
   so that job slots run in threads (item 9). It leaves out RQ's pubsub
   command channel (a worker is stopped by its signals) and RQ's scheduler
   (item 8). ``SimpleWorker`` sets a running job's heartbeat to its whole
   timeout + 60 s (``get_heartbeat_ttl``, overridden; rq 3 passes the time
   worked too) and never renews it; we renew a short one from a thread with
   ``maintain_heartbeats`` (rq 3 takes the execution as an argument).
5. *(gone in 0.3: stopping an idle worker needed RQ's teardown patched)*
6. **Maintenance** (``WorkerBase.run_maintenance``): RQ's ``clean_registries``
   (the steps of ``BaseWorker.clean_registries``, repeated so the
   intermediate list's can be held back while a live worker is frozen)
   runs under RQ's maintenance lock, the ``SET NX`` on
   ``registry_cleaning_key`` that ``Queue.acquire_maintenance_lock`` takes
   for 899 s: a worker killed inside a pass switched crash recovery off for
   15 minutes. Ours takes the same key for ``lock_ttl`` seconds, valued
   with its holder so a dead holder's parent releases it at once. Our steps
   run after RQ's, and queue again the jobs a dead worker took but never
   started, left in ``queue.intermediate_queue``
   (``get_first_seen``/``set_first_seen``), with ``Queue.enqueue_job``.
7. **Read-only counts** (``registry_counts``): a registry's ``count``
   *cleans* it first (re-queueing abandoned jobs as a side effect), so
   operator reads take ``ZCARD`` of the registries' keys instead, and
   ``LLEN`` of the queue's list and of its intermediate list
   (``IntermediateQueue.get_intermediate_queue_key``), where a job a worker
   took waits until it starts.
8. **Promoting scheduled jobs** (``promote_due``): in place of RQ's scheduler
   process (which rebuilds its own connection and so cannot follow a
   Sentinel failover, and promotes in two steps), workers move due ids from
   the scheduled registry, a sorted set of job ids scored by due time, onto
   the queue in one script call (``jobs_promote.lua``).
9. **Job slots** (``WorkerBase.in_thread``): a worker process runs several
   RQ workers, one per thread, each in our loop (item 4), which installs no
   signal handler (the process's own, in its main thread, sets the flags).
   RQ times jobs out with SIGALRM (``UnixSignalDeathPenalty``), which only
   the main thread gets; a slot uses ``TimerDeathPenalty`` (lane jobs have
   no RQ timeout, ``NO_TIMEOUT``: it is never armed).
10. **A rescued job's dead execution** (``WorkerBase.handle_job_success``):
   the job's execution registry (``job.execution_registry``, a zset of
   execution ids scored 60 s past their last heartbeat) still lists the dead
   worker's execution after its hash (``rq:execution:<job>:<id>``) expired,
   and RQ fetches every listed execution (rq 2 on success, rq 3 when the
   finished job is deleted): ``ValueError: Execution … not found``, the
   finished job retried and failed. Ids whose hash is gone are pruned first.
11. **Heartbeats from outside the process** (``WorkerBase.runs_key``,
   ``vouch``, ``abandon``): a handler that holds the GIL starves the beat
   thread, and RQ took its job for abandoned while it ran. A supervised
   worker lists its running executions (``Execution.composite_key``, the
   member of ``StartedJobRegistry``) in a set, and its parent renews what
   ``maintain_heartbeats`` renews for them: the started registry's score,
   the ``rq:execution:`` hash's TTL and the job's ``ExecutionRegistry``
   score (``ttl + 60`` s, as RQ's ``add``).
12. *(gone in 0.3: our loop does not subscribe to RQ's command channel)*
"""

from __future__ import annotations

import uuid
from typing import Any

import rq
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus, Retry
from rq.utils import now, utcformat

#: RQ's major version: 2 and 3 are supported (``docs/decisions/0001-rq.md``).
RQ_MAJOR = int(rq.__version__.split(".", 1)[0])

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
# RQ never interrupts a lane job (-1: no time limit). A call's time limit is
# the lane's own (dispatch/calls.py), which waits for work it cannot
# interrupt; RQ's would fail the job with that work still running, and the
# job's retry would run the same event beside it.
NO_TIMEOUT = -1
# Crash recovery: RQ re-queues an abandoned job while it has retries left;
# handler exceptions are counted per event by the lane itself.
CRASH_RETRIES = 10


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
) -> Job:
    """An unsaved RQ job that runs lanes of ``handler`` (listed in Redis)."""
    return Job.create(
        LANE_FUNC,
        args=(handler,),
        connection=connection,
        id=job_id or new_job_id(),
        timeout=NO_TIMEOUT,
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

    def __init__(self, connection: Redis, queue: str, handler: str) -> None:
        job = lane_job(connection, queue, handler, job_id="template")
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
    fields = job.to_dict()
    fields["status"] = JobStatus.QUEUED.value  # (1) what Queue._prepare_for_queue sets
    flat: list[Any] = []
    for field, value in fields.items():
        flat.append(field)
        flat.append(value)
    return flat
