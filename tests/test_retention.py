"""When retention ends, nothing of an event is left in Redis."""

from __future__ import annotations

from redis import Redis

from redo_hooks import ReturnEvent
from redo_hooks.dispatch.worker import build
from redo_hooks.store.events import event_key
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from .conftest import MakeHooks

#: Keys that hold no event: counters, one-time markers, until when dedupe marks
#: are written, RQ's registry of queues and workers.
FIXED = {
    b"rh:metrics",
    b"rh:waiting:events",
    b"rq:queues",
    b"rh:dead:parked:indexed",
    b"rh:issues:indexed",
    b"rh:dedupe",
    b"rq:clean_groups",  # rq 3's lock for its maintenance of job groups
}


def per_event_keys(redis: Redis) -> set[bytes]:
    return {k for k in redis.scan_iter() if k not in FIXED and not k.startswith(b"rq:worker")}


def test_nothing_is_left_once_retention_and_the_dedupe_window_end(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retention=1, dedupe_ttl=1, retries=1, backoff=0)
    failed: set[str] = set()

    @hooks.on("return", name="flaky")
    def flaky(event: ReturnEvent) -> None:
        if event.key not in failed:  # every event fails once, then succeeds
            failed.add(event.key)
            raise RuntimeError("once")

    hooks.add(lambda event: None, "return", name="steady")
    for n in range(12):
        assert deliver(hooks, sample_body(return_id=f"ret-{n % 4}", seq=n))
    assert per_event_keys(redis)
    drain(hooks)
    # Hashes, dedupe marks and the run log's time buckets (which end at most
    # one bucket width, here 1 s, after their events) expire on their own;
    # maintenance trims the time, type and outcome indexes.
    wait_for(
        lambda: (
            not any(
                any(redis.scan_iter(pattern))
                for pattern in ("rh:ev:*", "rh:body:*", "rh:seen:*", "rh:ret:*", "rh:ord:*")
            )
        ),
        10,
        "the stored events and their index buckets to expire",
    )
    assert redis.zcard("rh:events") == 12
    worker, runtime = build(hooks)
    try:
        worker.maintenance(runtime.queue)
    finally:
        runtime.close()
    assert per_event_keys(redis) == set()


def test_a_retention_shorter_than_the_dedupe_window_leaves_a_mark_for_the_window(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """The body is the dedupe mark; when it goes first, a mark of its own keeps the window."""
    hooks = make_hooks(retention=1, dedupe_ttl=3600)
    hooks.add(lambda event: None, "return", name="h")
    body = sample_body(return_id="ret-short")
    key, keys = event_key(body), Keys()
    assert deliver(hooks, body)
    assert 0 < redis.ttl(keys.seen(key)) <= 3600
    drain(hooks)
    wait_for(lambda: not redis.exists(keys.body(key)), 10, "the body to expire")
    assert not redis.exists(keys.event(key))
    assert not deliver(hooks, body)  # still inside the window: a duplicate
    assert 0 < redis.ttl(keys.seen(key)) <= 3600  # ...which ends with the window
