"""``redo-hooks status`` reads; it never changes what it reads."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from redo_hooks.ops.status import snapshot as status_snapshot
from redo_hooks.store.rq_internals import LANE_FUNC
from redo_hooks.testing import deliver, sample_body

from .conftest import MakeHooks, snapshot


def test_status_changes_nothing_even_with_an_abandoned_job_in_the_registries(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.on("return", name="h")(lambda event: None)
    assert deliver(hooks, sample_body(subject="ret-1"))
    queue = Queue(hooks.settings.queue, connection=redis)
    queue.enqueue(LANE_FUNC, args=("h",), job_id="abandoned")
    redis.zadd("rq:wip:redo-hooks", {"abandoned:exec-1": 1})  # its heartbeat long lapsed
    before = snapshot(redis)
    status = status_snapshot(redis, hooks.settings, hooks.registry)
    assert snapshot(redis) == before  # RQ's registry counts would have re-queued it
    assert (status.queued_jobs, status.running_jobs, status.events_waiting) == (2, 1, 1)
