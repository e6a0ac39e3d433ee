"""The RQ job that runs a handler's lanes, built the way ``Queue.enqueue`` builds it.

The ingest script writes this job's hash and queue entry itself (so that the
dedupe mark, the lane entry and the job are one atomic step); the hash comes
from RQ's own ``Job.create(...).to_dict()``, so RQ's workers, registries and
``rq info`` treat it like any other job. A test checks the fields against a job
RQ enqueued itself.
"""

from __future__ import annotations

import uuid
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus, Retry
from rq.utils import now, utcformat

#: The function every lane job runs (see ``jobs.run_lane``).
LANE_FUNC = "redo_hooks.jobs.run_lane"

# Lane jobs keep no result: a finished job hash is only residue (8 KB each
# with RQ's default 500 s), and nothing depends on it.
RESULT_TTL = 0
# Crash recovery: RQ re-queues an abandoned job while it has retries left;
# handler exceptions are counted per event by the lane itself.
CRASH_RETRIES = 10


def new_job_id() -> str:
    """A job id RQ accepts (``[A-Za-z0-9_-]+``)."""
    return "rh-" + uuid.uuid4().hex


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
    tests/test_jobspec.py checks it against ``Queue.enqueue``.
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
    job._status = JobStatus.QUEUED  # what Queue._prepare_for_queue sets
    flat: list[Any] = []
    for field, value in job.to_dict().items():
        flat.append(field)
        flat.append(value)
    return flat
