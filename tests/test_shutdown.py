"""SIGTERM lets the running handler finish, takes no new work, exits 0, loses nothing."""

from __future__ import annotations

import signal

import pytest
from redis import Redis

from redo_hooks.testing import deliver, sample_event, wait_for

from .conftest import SECRET, MakeHooks, as_bytes
from .processes import env, start_workers
from .slow_app import record

pytestmark = pytest.mark.slow

APP = "tests.slow_app:hooks"


def seqs(redis: Redis, key: str) -> list[int]:
    return [int(x) for x in redis.lrange(key, 0, -1)]


def test_sigterm_during_a_slow_handler_finishes_it_and_hands_the_rest_on(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.add(record, "return", name="slow.recorder")
    for n in range(3):
        deliver(
            hooks,
            sample_event(
                "return.created" if n == 0 else "return.updated", return_id="ret-s", seq=n
            ),
        )
    environ = env(redis_url, SECRET)
    worker = start_workers(APP, environ)
    wait_for(lambda: seqs(redis, "started:ret-s") == [0], 30, "the first handler call")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    # The handler in progress finished; nothing after it was started.
    assert seqs(redis, "done:ret-s") == [0]
    assert seqs(redis, "started:ret-s") == [0]
    # The rest waits for the next worker, in order, and nothing runs twice.
    again = start_workers(APP, environ, "--burst")
    assert again.wait(timeout=60) == 0
    assert seqs(redis, "done:ret-s") == [0, 1, 2]
    assert seqs(redis, "started:ret-s") == [0, 1, 2]


def test_a_grace_period_interrupts_a_handler_that_overruns_it_and_loses_nothing(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.add(record, "return", name="slow.recorder")
    for n in range(2):
        deliver(
            hooks,
            sample_event(
                "return.created" if n == 0 else "return.updated", return_id="ret-g", seq=n
            ),
        )
    environ = env(
        redis_url,
        SECRET,
        REDO_HOOKS_HEARTBEAT_TTL="2",
        REDO_HOOKS_MAINTENANCE_INTERVAL="1",
        SLOW_SECONDS="5",
    )
    worker = start_workers(APP, environ, "--grace-period", "1")
    wait_for(lambda: seqs(redis, "started:ret-g") == [0], 30, "the first handler call")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0  # did not wait the handler's 5 s out
    assert seqs(redis, "done:ret-g") == []  # interrupted mid-handler
    again = start_workers(APP, {**environ, "SLOW_SECONDS": "0"}, "--burst")
    assert again.wait(timeout=60) == 0
    assert seqs(redis, "done:ret-g") == [0, 1]  # the interrupted event ran again, in order


@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_sigterm_the_moment_a_worker_registers_is_a_clean_stop(
    redis_url: str, redis: Redis, concurrency: str
) -> None:
    """RQ registers a worker before it installs its signal handlers: that gap is covered."""
    for _ in range(3):
        redis.flushall()
        workers = start_workers(APP, env(redis_url, SECRET), "--concurrency", concurrency)
        wait_for(lambda: any(redis.scan_iter("rq:worker:*")), 20, "a worker to register")
        workers.send_signal(signal.SIGTERM)
        assert workers.wait(timeout=30) == 0


def test_sigterm_with_many_events_in_flight_finishes_them_and_hands_the_rest_on(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.on("return", name="slow.awaiting")(lambda event: None)
    for n in range(2):
        for r in range(40):
            assert deliver(hooks, sample_event("return.updated", return_id=f"ret-{r}", seq=n))
    environ = env(redis_url, SECRET, SLOW_SECONDS="1.5")
    worker = start_workers("tests.slow_app:awaiting_only", environ)  # default settings
    wait_for(lambda: redis.llen("awaiting:started") >= 20, 30, "many events in flight")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    started = redis.lrange("awaiting:started", 0, -1)
    assert sorted(redis.lrange("awaiting:done", 0, -1)) == sorted(started)  # none cut short
    assert len(started) < 80  # it did stop: the rest was handed on
    again = start_workers(
        "tests.slow_app:awaiting_only", {**environ, "SLOW_SECONDS": "0"}, "--burst"
    )
    assert again.wait(timeout=60) == 0
    done = [as_bytes(x).decode() for x in redis.lrange("awaiting:done", 0, -1)]
    assert sorted(done) == sorted(f"ret-{r}:{n}" for r in range(40) for n in range(2))  # once each
    for r in range(40):
        assert done.index(f"ret-{r}:0") < done.index(f"ret-{r}:1")  # in order


def test_sigterm_starts_none_of_the_calls_waiting_for_a_slot(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    """Four loop slots, forty lanes in one job: after SIGTERM the other 36 never start here."""
    hooks = make_hooks()
    hooks.on("return", name="slow.awaiting")(lambda event: None)
    for r in range(40):
        assert deliver(hooks, sample_event("return.updated", return_id=f"ret-{r}", seq=0))
    environ = env(redis_url, SECRET, SLOW_SECONDS="1.5", REDO_HOOKS_ASYNC_CONCURRENCY="4")
    worker = start_workers("tests.slow_app:awaiting_only", environ)
    wait_for(lambda: redis.llen("awaiting:started") == 4, 30, "the first four calls")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert redis.llen("awaiting:started") == 4  # the 36 waiting for a slot were not started
    assert redis.llen("awaiting:done") == 4  # the four in flight finished
    again = start_workers(
        "tests.slow_app:awaiting_only", {**environ, "SLOW_SECONDS": "0"}, "--burst"
    )
    assert again.wait(timeout=60) == 0
    done = sorted(as_bytes(x).decode() for x in redis.lrange("awaiting:done", 0, -1))
    assert done == sorted(f"ret-{r}:0" for r in range(40))  # each once: handed on, not lost
