"""Property with real worker processes: random events, failures, redeliveries and
SIGKILLs of workers mid-run. After the queue drains, guarantees 3-6 hold:
redeliveries are not processed, every event runs for every handler at least
once and never after a later event of its return, one handler's failures never
block the other, and only events that ran out of retries are dead-lettered.

Workers run with a 2 s heartbeat and 1 s maintenance so a killed worker's lanes
come back in seconds (the mechanism is the same as with the defaults).
"""

from __future__ import annotations

import random
import signal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.store.events import unpack_body
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, sample_body, wait_for

from . import kill_app
from .conftest import SECRET
from .processes import env, start_workers, stop, wait_registered

# Both kill processes and wait on recovery: they run one after the other
# (scripts/test distributes by group), not on top of each other.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chaos")]

APP = "tests.kill_app:hooks"
RETRIES = 2


def runs(redis: Redis, kind: str, subject: str) -> list[int]:
    return [int(x) for x in redis.lrange(f"kill:{kind}:{subject}", 0, -1)]


def in_order(ran: list[int]) -> bool:
    """No event ran after a later one of its return had run (re-runs allowed)."""
    newest = -1
    for seq in ran:
        if seq < newest:
            return False
        newest = max(newest, seq)
    return True


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    subjects = [f"ret-{i}" for i in range(draw(st.integers(1, 3)))]
    events = draw(st.lists(st.sampled_from(subjects), min_size=2, max_size=10))
    plan = {i: draw(st.integers(0, RETRIES + 1)) for i in range(len(events)) if draw(st.booleans())}
    kills = draw(st.lists(st.integers(0, len(events) - 1), max_size=3))
    again = draw(st.lists(st.integers(0, len(events) - 1), max_size=3))
    return {"events": events, "plan": plan, "kills": set(kills), "again": again}


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_guarantees_hold_across_worker_kills(
    scenario: dict[str, object], redis_url: str, redis: Redis
) -> None:
    events: list[str] = scenario["events"]  # type: ignore[assignment]
    plan: dict[int, int] = scenario["plan"]  # type: ignore[assignment]
    kills: set[int] = scenario["kills"]  # type: ignore[assignment]
    again: list[int] = scenario["again"]  # type: ignore[assignment]
    redis.flushall()
    for seq, failures in plan.items():
        redis.set(f"kill:plan:{seq}", failures)
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET], retries=RETRIES, backoff=0)
    hooks.add(kill_app.steady, "return", name="kill.steady")
    hooks.add(kill_app.flaky, "return", name="kill.flaky")
    environ = env(
        redis_url,
        SECRET,
        REDO_HOOKS_HEARTBEAT_TTL="2",
        REDO_HOOKS_MAINTENANCE_INTERVAL="1",
        REDO_HOOKS_RETRIES=str(RETRIES),
        REDO_HOOKS_BACKOFF="0",
    )
    workers = [start_workers(APP, environ) for _ in range(2)]
    wait_registered(redis, workers)
    rng = random.Random(len(events))
    bodies = [sample_body("return.updated", return_id=s, seq=n) for n, s in enumerate(events)]
    try:
        for n, body in enumerate(bodies):
            assert deliver(hooks, body)
            if n in kills:  # kill a worker while it may be mid-handler
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(timeout=10)
                workers[victim] = start_workers(APP, environ)
        for n in again:
            assert not deliver(hooks, bodies[n])  # redeliveries are duplicates

        expected: dict[str, list[int]] = {}
        for n, subject in enumerate(events):
            expected.setdefault(subject, []).append(n)

        def settled() -> bool:
            dead = {orjson.loads(r)["event_key"] for r in redis.hvals(Keys().dead)}
            done_flaky = sum(len(set(runs(redis, "flaky", s))) for s in expected)
            done_steady = all(set(runs(redis, "steady", s)) == set(v) for s, v in expected.items())
            return done_steady and done_flaky + len(dead) == len(events)

        wait_for(settled, 60, "every event to succeed or be dead-lettered")
        wait_registered(redis, workers)  # a restarted one may still be starting
    finally:
        codes = [stop(worker) for worker in workers]
    # SIGTERM, wherever it finds a worker (its blocking dequeue included), is a
    # clean stop: RQ's teardown once read a pipeline's stale replies and failed.
    assert codes == [0] * len(workers), codes

    dead_seqs = {_seq(redis, orjson.loads(r)["event_key"]) for r in redis.hvals(Keys().dead)}
    for subject, seqs in expected.items():
        steady = runs(redis, "steady", subject)
        assert sorted(set(steady)) == seqs and in_order(steady)
        flaky = runs(redis, "flaky", subject)  # a kill may re-run a success: at-least-once
        assert in_order(flaky) and in_order(runs(redis, "attempts", subject))
        assert sorted(set(flaky) | {s for s in dead_seqs if s in seqs}) == seqs
    # Only events planned to fail more than the retries can be dead-lettered.
    assert dead_seqs <= {n for n, f in plan.items() if f > RETRIES}
    assert list(redis.scan_iter("rh:lane:*")) == []


def _seq(redis: Redis, event_key: str) -> int:
    body = redis.get(Keys().body(event_key))
    assert isinstance(body, bytes)
    return int(orjson.loads(unpack_body(body))["seq"])
