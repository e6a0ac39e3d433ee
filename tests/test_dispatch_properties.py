"""Property: under any interleaving of deliveries, redeliveries, failures and
partial worker runs, every handler sees each return's events once and in
order, failures hold back only their own lane, and nothing is left behind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from redo_hooks import ReturnEvent
from redo_hooks.dispatch.lanes import bind
from redo_hooks.dispatch.worker import build
from redo_hooks.testing import DeadLettered, deliver, drain, sample_body

from .conftest import MakeHooks

RETRIES = 2


@dataclass(frozen=True)
class Step:
    """Deliver event ``index`` (again, if already delivered), then run ``jobs`` jobs."""

    index: int
    jobs: int


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[str], dict[int, int], list[Step], int, int]:
    subjects = [f"ret-{i}" for i in range(draw(st.integers(1, 4)))]
    events = draw(st.lists(st.sampled_from(subjects), min_size=1, max_size=14))
    failures = {
        i: draw(st.integers(0, RETRIES + 1)) for i in range(len(events)) if draw(st.booleans())
    }
    order = list(range(len(events)))
    # Redeliveries: some events come again, any time after the first delivery.
    for again in draw(st.lists(st.integers(0, len(events) - 1), max_size=4)):
        order.insert(draw(st.integers(order.index(again) + 1, len(order))), again)
    steps = [Step(i, draw(st.integers(0, 2))) for i in order]
    return events, failures, steps, draw(st.integers(1, 3)), draw(st.integers(1, 3))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_order_once_isolation_and_nothing_left_behind(
    scenario: tuple[list[str], dict[int, int], list[Step], int, int],
    make_hooks: MakeHooks,
    redis: Redis,
) -> None:
    events, failures, steps, lanes_per_job, lane_batch = scenario
    redis.flushall()
    hooks = make_hooks(retries=RETRIES, lanes_per_job=lanes_per_job, lane_batch=lane_batch)
    steady: dict[str, list[int]] = defaultdict(list)
    attempts: dict[str, list[int]] = defaultdict(list)
    succeeded: dict[str, list[int]] = defaultdict(list)
    left = dict(failures)

    def steady_handler(event: ReturnEvent) -> None:
        steady[event.return_id].append(int(event.raw["seq"]))

    def flaky_handler(event: ReturnEvent) -> None:
        n = int(event.raw["seq"])
        attempts[event.return_id].append(n)
        if left.get(n, 0) > 0:
            left[n] -= 1
            raise RuntimeError(f"failure planned for event {n}")
        succeeded[event.return_id].append(n)

    hooks.add(steady_handler, "return", name="steady")
    hooks.add(flaky_handler, "return", name="flaky")
    bodies = [
        sample_body("return.created", return_id=subject, seq=n) for n, subject in enumerate(events)
    ]
    worker, runtime = build(hooks)
    try:
        for step in steps:
            deliver(hooks, bodies[step.index])
            if step.jobs:
                worker.run(burst=True, max_jobs=step.jobs)
    finally:
        runtime.close()
        bind(None)
    dead = {n for n, count in failures.items() if count > RETRIES}
    try:
        drain(hooks)
    except DeadLettered:
        assert dead, "only planned failures may dead-letter"

    expected = defaultdict(list)
    for n, subject in enumerate(events):
        expected[subject].append(n)
    # The steady handler saw every event exactly once, in order: the other
    # handler's failures never re-ran or blocked it.
    assert dict(steady) == dict(expected)
    for subject, seqs in expected.items():
        # Order: attempts never go back to an earlier event.
        assert attempts[subject] == sorted(attempts[subject])
        # Each event: its failures, then one success, unless dead-lettered.
        assert succeeded[subject] == [n for n in seqs if n not in dead]
        for n in seqs:
            tries = attempts[subject].count(n)
            assert tries == (RETRIES + 1 if n in dead else failures.get(n, 0) + 1)
    assert redis.zcard("rh:dead:ids") == len(dead)
    for pattern in ("rh:lane:*", "rh:lanestate:*", "rh:joblanes:*", "rh:open:*"):
        assert list(redis.scan_iter(pattern)) == [], pattern
    assert redis.llen("rq:queue:redo-hooks") == 0
    # The waiting index (metrics, status) agrees: nothing waits.
    assert redis.zcard("rh:waiting") == 0
    assert int(redis.get("rh:waiting:events") or 0) == 0
