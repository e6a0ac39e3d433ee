"""``redo-hooks status`` reads; it never changes what it reads."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from redo_hooks import ReturnEvent
from redo_hooks.ops.dead_letters import PAGE, DeadLetters
from redo_hooks.ops.status import snapshot as status_snapshot
from redo_hooks.store.drift import PARTS as DRIFT_PARTS
from redo_hooks.store.keys import Keys
from redo_hooks.store.retention import index_parked_letters
from redo_hooks.store.rq_internals import LANE_FUNC
from redo_hooks.testing import deliver, drain, sample_body

from .conftest import MakeHooks, snapshot
from .test_metrics import scrape, value


def test_status_changes_nothing_even_with_an_abandoned_job_in_the_registries(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.on("return", name="h")(lambda event: None)
    assert deliver(hooks, sample_body(return_id="ret-1"))
    queue = Queue(hooks.settings.queue, connection=redis)
    queue.enqueue(LANE_FUNC, args=("h",), job_id="abandoned")
    redis.zadd("rq:wip:redo-hooks", {"abandoned:exec-1": 1})  # its heartbeat long lapsed
    before = snapshot(redis)
    status = status_snapshot(redis, hooks.settings, hooks.registry)
    assert snapshot(redis) == before  # RQ's registry counts would have re-queued it
    assert (status.queued_jobs, status.running_jobs, status.events_waiting) == (2, 1, 1)


def test_dead_and_parked_letters_are_counted_without_reading_a_record(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=0)

    @hooks.on("return", name="parks", park=True)
    def parks(event: ReturnEvent) -> None:
        raise RuntimeError("down")

    @hooks.on("return", name="dies")
    def dies(event: ReturnEvent) -> None:
        raise RuntimeError("down too")

    for n in range(3):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    drain(hooks, raise_on_dead=False)
    keys = Keys()
    # As a release before the index left it: parked letters, no index.
    redis.delete(keys.parked, keys.parked_indexed)
    slow = status_snapshot(redis, hooks.settings, hooks.registry)
    assert (slow.dead_letters, slow.parked_lanes) == (6, 3)

    assert index_parked_letters(redis, keys) == 3  # what a worker's maintenance does once
    assert index_parked_letters(redis, keys) == 0
    redis.config_resetstat()
    fast = status_snapshot(redis, hooks.settings, hooks.registry)
    assert (fast.dead_letters, fast.parked_lanes) == (6, 3)
    stats = redis.info("commandstats")
    assert not set(stats) & {"cmdstat_hscan", "cmdstat_hvals", "cmdstat_hmget"}
    # HGETALL only for the schema-drift records (bounded): one per part, none more.
    assert stats["cmdstat_hgetall"]["calls"] == len(DRIFT_PARTS)

    letters = DeadLetters(redis, hooks.settings, hooks.registry)
    parked = [d for d in letters.list() if d.parked]
    assert letters.drop(parked[0]) and letters.retry(parked[1])
    after = status_snapshot(redis, hooks.settings, hooks.registry)
    assert (after.dead_letters, after.parked_lanes) == (4, 1)


def test_dead_letters_are_read_a_page_per_round_trip(make_hooks: MakeHooks, redis: Redis) -> None:
    hooks = make_hooks(retries=0)

    @hooks.on("return", name="dies")
    def dies(event: ReturnEvent) -> None:
        raise RuntimeError("down")

    count = PAGE * 2 + 3
    for n in range(count):
        assert deliver(hooks, sample_body(return_id=f"ret-{n % 50}", seq=n))
    drain(hooks, raise_on_dead=False)
    letters = DeadLetters(redis, hooks.settings, hooks.registry)
    redis.config_resetstat()
    every = letters.list()
    assert redis.info("commandstats")["cmdstat_hmget"]["calls"] == 3  # pages, not letters
    assert len(every) == count
    assert [d.dead_at for d in every] == sorted(d.dead_at for d in every)
    assert letters.list(limit=7) == every[:7]
    assert letters.list(return_id="ret-3") == [d for d in every if d.return_id == "ret-3"]
    assert letters.list(before=every[600].dead_at) == [
        d for d in every if d.dead_at <= every[600].dead_at
    ]


def test_quarantined_lanes_are_counted_apart_in_status_and_metrics(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Before: status and /metrics read the main queue only, so lanes running alone
    after a crash were in no count. (A job of the quarantine queue holds one lane.)"""
    hooks = make_hooks()
    quarantine = Queue(hooks.settings.quarantine_queue, connection=redis)
    quarantine.enqueue(LANE_FUNC, "h")
    quarantine.enqueue_in(timedelta(minutes=5), LANE_FUNC, "h")  # its next attempt, later
    status = status_snapshot(redis, hooks.settings, hooks.registry)
    assert status.quarantined_lanes == 2
    assert (status.queued_jobs, status.running_jobs, status.scheduled_retries) == (0, 0, 0)
    with TestClient(hooks.asgi()) as client:
        samples = scrape(client)
    assert value(samples, "redo_hooks_quarantined_lanes") == 2
    assert value(samples, "redo_hooks_queued_jobs") == 0


def test_a_job_taken_but_not_started_is_still_counted_as_queued(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """A worker's wait on the queue moves a job to RQ's intermediate list, where it
    stays until the worker starts it: milliseconds, or while its process is frozen.
    Before, such a job was in no count (a quarantined lane read 0 meanwhile)."""
    hooks = make_hooks()
    queues = [
        Queue(name, connection=redis)
        for name in (hooks.settings.queue, hooks.settings.quarantine_queue)
    ]
    for queue in queues:
        queue.enqueue(LANE_FUNC, "h")
        # What a worker's blocking dequeue does before it starts the job.
        redis.lmove(queue.key, queue.intermediate_queue.key, "LEFT", "RIGHT")
        assert redis.llen(queue.key) == 0 and redis.llen(queue.intermediate_queue.key) == 1
    status = status_snapshot(redis, hooks.settings, hooks.registry)
    assert (status.queued_jobs, status.running_jobs, status.quarantined_lanes) == (1, 0, 1)
    with TestClient(hooks.asgi()) as client:
        samples = scrape(client)
    assert value(samples, "redo_hooks_queued_jobs") == 1
    assert value(samples, "redo_hooks_quarantined_lanes") == 1
