"""The job hash the ingest script writes is the one RQ's own enqueue writes."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.job import Job, Retry

from redo_hooks.store.rq_internals import CRASH_RETRIES, LANE_FUNC, RESULT_TTL
from redo_hooks.testing import deliver, sample_body

from .conftest import MakeHooks

VOLATILE = {b"created_at", b"enqueued_at"}


def handler(event: object) -> None: ...


def test_the_lua_written_job_matches_queue_enqueue(make_hooks: MakeHooks, redis: Redis) -> None:
    hooks = make_hooks()
    hooks.add(handler, "return", name="h")
    assert deliver(hooks, sample_body(subject="ret-1"))
    (raw_id,) = redis.lrange("rq:queue:redo-hooks", 0, -1)
    ours_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    ours = redis.hgetall(f"rq:job:{ours_id}")

    queue = Queue("redo-hooks", connection=redis)
    theirs_job = queue.enqueue(
        LANE_FUNC,
        args=("h",),
        job_id="reference",
        job_timeout=hooks.settings.job_timeout,
        result_ttl=RESULT_TTL,
        retry=Retry(max=CRASH_RETRIES),
        description="lanes of h",
    )
    theirs = redis.hgetall(theirs_job.key)
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in VOLATILE} == {
        k: v for k, v in theirs.items() if k not in VOLATILE
    }
    job = Job.fetch(ours_id, connection=redis)
    assert job.func_name == LANE_FUNC and job.args == ("h",)
    assert redis.lrange(f"rh:joblanes:{ours_id}", 0, -1) == [b"ret-1"]
    assert job.get_status() == "queued" and job.retries_left == CRASH_RETRIES
    assert b"rq:queue:redo-hooks" in redis.smembers("rq:queues")
