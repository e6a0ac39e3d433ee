"""The RQ job that runs one lane, built the way ``Queue.enqueue`` builds it.

The ingest script writes this job's hash and queue entry itself (so that the
dedupe mark, the lane entry and the job are one atomic step); the hash comes
from RQ's own ``Job.create(...).to_dict()``, so RQ's workers, registries and
``rq info`` treat it like any other job. A test checks the fields against a job
RQ enqueued itself.
"""

from __future__ import annotations

import uuid
import zlib
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
    subject: str,
    *,
    job_id: str | None = None,
    timeout: int,
) -> Job:
    """An unsaved RQ job that runs the ``(handler, subject)`` lane."""
    return Job.create(
        LANE_FUNC,
        args=(handler, subject),
        connection=connection,
        id=job_id or new_job_id(),
        timeout=timeout,
        result_ttl=RESULT_TTL,
        retry=Retry(max=CRASH_RETRIES),
        origin=queue,
        description=f"lane {handler} {subject}",
    )


class LaneJobTemplate:
    """The parts of a handler's queued lane job that ``ingest.lua`` needs.

    ``Job.create(...).to_dict()`` costs ~45 µs, a fifth of a request. The
    fields of a queued lane job differ only in id, times, description and
    ``data`` — ``zlib(serializer((func, instance, args, kwargs)))`` as in
    ``Job.data``/``Job.to_dict`` — so the rest is built once by RQ itself and
    sent once per ingest call; the script adds the varying fields.
    tests/test_jobspec.py checks the result against ``Queue.enqueue``.
    """

    VARYING = frozenset({"data", "description", "created_at", "enqueued_at"})

    def __init__(self, connection: Redis, queue: str, handler: str, *, timeout: int) -> None:
        job = lane_job(connection, queue, handler, "", job_id="template", timeout=timeout)
        self.handler = handler
        self._serializer = job.serializer
        flat = queued_fields(job)
        self.static_fields: list[Any] = []
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            if field not in self.VARYING:
                self.static_fields += [field, value]

    def data(self, subject: str) -> bytes:
        """The job's ``data`` field for the lane of ``subject``."""
        payload: tuple[str, None, tuple[str, str], dict[str, Any]] = (
            LANE_FUNC,
            None,
            (self.handler, subject),
            {},
        )
        return zlib.compress(self._serializer.dumps(payload))


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
