"""RQ's registries, read and written where its API falls short: items 3, 7, 8 and 11.

The numbered items are listed, with what each relies on, in
``store/rq_internals.py``; ``tests/test_rq_internals.py`` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.executions import ExecutionRegistry
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from . import lua
from .replies import text
from .rq_internals import JOB_KEY_PREFIX, QUEUES_KEY, queue_key, rq_timestamp


def scheduled_key(queue: Queue) -> str:
    """The sorted set of ``queue``'s scheduled job ids (score: when, in epoch seconds)."""
    return str(ScheduledJobRegistry(queue=queue).key)  # type: ignore[no-untyped-call]


def schedule(queue: Queue, job: Job, when: datetime, pipe: Pipeline) -> None:
    """Schedule ``job`` for ``when`` as part of the transaction ``pipe``."""
    queue.schedule_job(job, when, pipeline=pipe)
    # (3) rq 2.12's ScheduledJobRegistry.schedule ignores the pipeline: repeat
    # its ZADD inside ours so the schedule commits with everything else. RQ
    # also truncates the time to whole seconds, which would run a retry up to
    # 1 s before its backoff ends: ours keeps the fraction (the promoter reads it).
    pipe.zadd(scheduled_key(queue), {job.id: when.timestamp()})


def scheduled_job_ids(connection: Redis, queue: Queue) -> list[str]:
    """(8) Every job id in ``queue``'s scheduled registry."""
    return [text(job_id) for job_id in connection.zrange(scheduled_key(queue), 0, -1)]


@dataclass(frozen=True, slots=True)
class Promotion:
    """What one promotion of due scheduled jobs did."""

    promoted: int
    #: Ids in the registry without a job hash, dropped as RQ's scheduler drops them.
    dropped: int
    #: When the next scheduled job is due (epoch seconds); None: none is scheduled.
    next_due: float | None


def promote_due(connection: Redis, queue: Queue, now: float, limit: int = 1000) -> Promotion:
    """(8) Move ``queue``'s scheduled jobs due by ``now`` onto it, in one script call.

    In place of RQ's scheduler process, which rebuilds its own connection
    from the pool's parameters (so it cannot follow a Sentinel failover):
    every worker promotes, and the script lets exactly one take each job.
    """
    script = connection.register_script(lua.source("jobs_promote"))
    promoted, dropped, next_due = script(
        keys=[scheduled_key(queue), queue.key, QUEUES_KEY],
        args=[now, JOB_KEY_PREFIX, rq_timestamp(), limit],
    )
    return Promotion(int(promoted), int(dropped), None if next_due is None else float(next_due))


def registry_counts(connection: Redis, queue: Queue) -> dict[str, int]:
    """Queued, running, scheduled and failed jobs of ``queue``, without side effects (7).

    Queued: on the queue, or taken from it by a worker that has not started
    it yet (RQ's intermediate list: for milliseconds, or while that worker's
    process is frozen).
    """
    listed, taken, started, scheduled_in = live_job_keys(queue.name)
    # One MULTI: a job moving between these keys meanwhile is counted once.
    with connection.pipeline(transaction=True) as pipe:
        pipe.llen(listed)
        pipe.llen(taken)
        for key in (started, scheduled_in, FailedJobRegistry(queue=queue).key):
            pipe.zcard(key)
        queued, not_started, running, scheduled, failed = pipe.execute()
    return {
        "queued": int(queued) + int(not_started),
        "running": int(running),
        "scheduled": int(scheduled),
        "failed": int(failed),
    }


def live_job_keys(queue: str) -> tuple[str, str, str, str]:
    """(7) Where ``queue``'s unfinished jobs are: its list, the list of jobs taken
    from it but not started, its started and its scheduled registries.

    For counts read with ``LLEN``/``ZCARD`` (never the registries' ``count``).
    """
    return (
        queue_key(queue),
        str(IntermediateQueue.get_intermediate_queue_key(queue_key(queue))),
        started_key(queue),
        str(ScheduledJobRegistry.key_template.format(queue)),
    )


def started_key(queue: str) -> str:
    """(11) ``StartedJobRegistry``'s key for ``queue``: running executions by heartbeat end."""
    return str(StartedJobRegistry.key_template.format(queue))


def vouch(connection: Redis, runs_key: str, queues: list[str], ttl: int, now: float) -> int:
    """(11) Renew the heartbeats of the executions listed in ``runs_key``; return how many.

    Only what exists is renewed (``XX``): an execution that ended meanwhile
    is not brought back, and of ``queues`` only the started registry that
    lists it changes. The list itself lasts ten heartbeats past the last
    renewal, so a parent that died leaves nothing behind for long.
    """
    members = [text(m) for m in connection.smembers(runs_key)]
    with connection.pipeline(transaction=False) as pipe:
        for member in members:
            job_id, _, execution_id = member.partition(":")
            for queue in queues:
                pipe.zadd(started_key(queue), {member: now + ttl}, xx=True)
            pipe.expire(f"rq:execution:{member}", ttl)
            executions = ExecutionRegistry.key_template.format(job_id)
            pipe.zadd(executions, {execution_id: now + ttl + 60}, xx=True)
            pipe.expire(executions, ttl + 60)
        pipe.expire(runs_key, 10 * ttl)
        pipe.execute()
    return len(members)


# Delete KEYS[1] if its value is ARGV[1]: a lock released by its holder only.
_RELEASE_IF_HELD = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


def abandon(connection: Redis, runs_key: str, queues: list[str]) -> list[str]:
    """(11) The process behind ``runs_key`` is dead: let maintenance re-run its jobs now.

    Its executions' heartbeats are made to have ended (score 0), so the next
    maintenance pass of any worker re-queues their jobs, as RQ does for an
    abandoned job, without waiting for the heartbeats to lapse; a maintenance
    lock it died holding (6) is released. Returns the jobs' ids.
    """
    members = [text(m) for m in connection.smembers(runs_key)]
    with connection.pipeline(transaction=True) as pipe:
        for queue in queues:
            if members:
                pipe.zadd(started_key(queue), dict.fromkeys(members, 0), xx=True)
            lock = Queue(queue, connection=connection).registry_cleaning_key
            pipe.eval(_RELEASE_IF_HELD, 1, lock, runs_key)
        pipe.delete(runs_key)
        pipe.execute()
    return [m.partition(":")[0] for m in members]
