"""Retries with real worker processes: a failing event holds only its own return."""

from __future__ import annotations

import pytest
from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.testing import deliver, sample_body, wait_for

from . import kill_app
from .conftest import SECRET, as_bytes
from .processes import env, start_workers, stop

pytestmark = pytest.mark.slow

APP = "tests.kill_app:hooks"


def test_an_event_failing_twice_then_succeeding_holds_only_its_return(
    redis_url: str, redis: Redis
) -> None:
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET], retries=3, backoff=1.0)
    hooks.add(kill_app.steady, "return", name="kill.steady")
    hooks.add(kill_app.flaky, "return", name="kill.flaky")
    redis.set("kill:plan:1", 2)  # ret-a's event 1 fails twice
    environ = env(redis_url, SECRET, REDO_HOOKS_RETRIES="3", REDO_HOOKS_BACKOFF="1.0")
    workers = start_workers(APP, environ, "--concurrency", "2")
    try:
        for n in range(4):
            deliver(hooks, sample_body("return.updated", return_id="ret-a", seq=n))
        for n in range(4, 8):
            deliver(hooks, sample_body("return.updated", return_id="ret-b", seq=n))
        wait_for(lambda: redis.llen("kill:order") == 8, 60, "every event to succeed")
    finally:
        assert stop(workers) == 0
    order = [as_bytes(x).decode() for x in redis.lrange("kill:order", 0, -1)]
    attempts_a = [int(x) for x in redis.lrange("kill:attempts:ret-a", 0, -1)]
    assert attempts_a == [0, 1, 1, 1, 2, 3]  # two failures, then in order
    # Each retry waited out its backoff (base 1 s, doubling, jittered into
    # the upper half): at least 0.5 s, then at least 1 s.
    at = [float(x) for x in redis.lrange("kill:attempted_at:ret-a:1", 0, -1)]
    assert len(at) == 3
    assert at[1] - at[0] >= 0.5, at
    assert at[2] - at[1] >= 1.0, at
    assert [o for o in order if o.startswith("ret-a")] == [f"ret-a:{n}" for n in range(4)]
    # ret-b was not held up: all of it ran while ret-a's event 1 waited to retry.
    assert order.index("ret-b:7") < order.index("ret-a:1")
    # The other handler ran every event once, never held back by the failures.
    assert [int(x) for x in redis.lrange("kill:steady:ret-a", 0, -1)] == [0, 1, 2, 3]
