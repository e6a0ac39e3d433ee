"""A worker process killed mid-handler loses nothing: the event runs again, in order.

RQ notices a dead worker's job when its heartbeat expires (``job_timeout`` +
60 s) at the next maintenance pass, then re-queues it (lane jobs carry
``Retry``); the job still owns its lanes and resumes at the head event. This
test waits that minute, so it is the slowest in the suite.
"""

from __future__ import annotations

import pytest
from redis import Redis

from redo_hooks.testing import deliver, sample_event, wait_for

from .conftest import SECRET, MakeHooks, as_bytes
from .crash_app import record
from .processes import env, start_workers

pytestmark = pytest.mark.slow

APP = "tests.crash_app:hooks"


def test_sigkill_mid_handler_reruns_the_event_in_order(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    hooks = make_hooks(job_timeout=1)  # baked into the lane jobs at ingest

    hooks.add(record, "return", name="crash.recorder")
    for n in range(4):
        assert deliver(
            hooks, sample_event("created" if n == 0 else "updated", subject="ret-k", seq=n)
        )
    environ = env(redis_url, SECRET, REDO_HOOKS_JOB_TIMEOUT="1")
    first = start_workers(APP, environ, "--burst")
    assert first.wait(timeout=60) == -9  # killed by its own handler, mid-event 1
    assert [int(x) for x in redis.lrange("crash:ret-k", 0, -1)] == [0]
    assert redis.zcard("rq:wip:redo-hooks") == 1  # the job is stranded as started

    # Once the dead worker's heartbeat has expired, any worker's start-up
    # maintenance re-queues the job, and it carries on from event 1.
    def expired() -> bool:
        (member,) = redis.zrange("rq:wip:redo-hooks", 0, 0)
        score = redis.zscore("rq:wip:redo-hooks", as_bytes(member))
        return score is not None and score < _now(redis)

    wait_for(
        expired,
        90,
        "the dead worker's heartbeat to expire",
    )
    second = start_workers(APP, environ, "--burst")
    assert second.wait(timeout=60) == 0
    assert [int(x) for x in redis.lrange("crash:ret-k", 0, -1)] == [0, 1, 2, 3]


def _now(redis: Redis) -> float:
    seconds, micros = redis.time()
    return float(seconds) + micros / 1e6
