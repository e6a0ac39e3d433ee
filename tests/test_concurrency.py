"""Many lanes in flight in one worker process, each lane still in order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from redo_hooks import ReturnEvent
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, drain, sample_body

from .conftest import MakeHooks

#: How long a gate waits for the calls it expects before the test fails.
GATE_TIMEOUT = 30.0


class Gate:
    """Holds the first ``n`` async calls until all ``n`` are in flight at once.

    Concurrency proven by the calls waiting on each other, not by sleeps
    that happen to overlap: with fewer than ``n`` at once the gate never
    opens and the calls fail after ``GATE_TIMEOUT``.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrived = 0
        self.event: asyncio.Event | None = None

    async def wait(self) -> None:
        if self.event is None:
            self.event = asyncio.Event()  # on the worker's loop
        self.arrived += 1
        if self.arrived >= self.n:
            self.event.set()
        await asyncio.wait_for(self.event.wait(), GATE_TIMEOUT)

    @property
    def opened(self) -> bool:
        return self.event is not None and self.event.is_set()


class InFlight:
    """Counts calls running at once, and records each return's order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.order: defaultdict[str, list[int]] = defaultdict(list)

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self, event: ReturnEvent) -> None:
        with self.lock:
            self.now -= 1
            self.order[event.return_id].append(int(event.raw["seq"]))


def test_async_handlers_of_many_returns_run_at_once_each_return_in_order(
    make_hooks: MakeHooks,
) -> None:
    seen = InFlight()
    gate = Gate(10)
    hooks = make_hooks(retries=0)

    @hooks.on("return", name="slow_io")
    async def slow_io(event: ReturnEvent) -> None:
        seen.enter()
        await gate.wait()
        seen.leave(event)

    for n in range(3):
        for r in range(30):
            assert deliver(hooks, sample_body("return.updated", return_id=f"ret-{r}", seq=n))
    drain(hooks)
    assert gate.opened and seen.most >= 10, seen.most  # many lanes awaited at once...
    assert seen.most <= hooks.settings.async_concurrency
    assert dict(seen.order) == {f"ret-{r}": [0, 1, 2] for r in range(30)}  # ...each in order


def test_sync_handlers_run_on_at_most_sync_threads_threads(make_hooks: MakeHooks) -> None:
    seen = InFlight()
    threads: set[str] = set()
    # The first four calls meet at the barrier: four threads at once, proven.
    barrier = threading.Barrier(4, timeout=GATE_TIMEOUT)
    hooks = make_hooks(sync_threads=4, retries=0)

    calls = 0

    @hooks.on("return", name="blocking_io")
    def blocking_io(event: ReturnEvent) -> None:
        nonlocal calls
        seen.enter()
        with seen.lock:
            threads.add(threading.current_thread().name)
            calls += 1
            first_four = calls <= 4
        if first_four:
            barrier.wait()
        seen.leave(event)

    for n in range(2):
        for r in range(12):
            assert deliver(hooks, sample_body("return.updated", return_id=f"ret-{r}", seq=n))
    drain(hooks)
    assert not barrier.broken and seen.most == 4, seen.most
    assert len(threads) <= 4 and threading.main_thread().name not in threads
    assert dict(seen.order) == {f"ret-{r}": [0, 1] for r in range(12)}


def test_async_concurrency_bounds_the_calls_in_flight(make_hooks: MakeHooks) -> None:
    seen = InFlight()
    gate = Gate(3)  # three at once, proven; a fourth would be over the bound
    hooks = make_hooks(async_concurrency=3, retries=0)

    @hooks.on("return", name="bounded")
    async def bounded(event: ReturnEvent) -> None:
        seen.enter()
        await gate.wait()
        seen.leave(event)

    for r in range(12):
        assert deliver(hooks, sample_body("return.created", return_id=f"ret-{r}", seq=0))
    drain(hooks)
    assert gate.opened and seen.most == 3


Plan = dict[str, list[tuple[float, int]]]  # return -> per event: (latency, failures first)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    returns = draw(st.integers(2, 6))
    out: Plan = {}
    for r in range(returns):
        events = draw(st.integers(1, 4))
        out[f"ret-{r}"] = [
            (draw(st.sampled_from([0.0, 0.002, 0.01])), draw(st.integers(0, 2)))
            for _ in range(events)
        ]
    return out


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans(), is_async=st.booleans())
def test_order_holds_with_many_in_flight_random_latencies_and_failures(
    make_hooks: MakeHooks, redis: Redis, plan: Plan, is_async: bool
) -> None:
    redis.flushall()
    hooks = make_hooks(retries=2, backoff=0)
    failures_left = {(s, n): f for s, events in plan.items() for n, (_, f) in enumerate(events)}
    succeeded: defaultdict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def attempt(event: ReturnEvent) -> float:
        key = (event.return_id, int(event.raw["seq"]))
        with lock:
            if failures_left[key] > 0:
                failures_left[key] -= 1
                raise RuntimeError(f"planned failure of {key}")
        return plan[event.return_id][key[1]][0]

    def record(event: ReturnEvent) -> None:
        with lock:
            succeeded[event.return_id].append(int(event.raw["seq"]))

    if is_async:

        @hooks.on("return", name="h")
        async def handler(event: ReturnEvent) -> None:
            await asyncio.sleep(attempt(event))
            record(event)
    else:

        @hooks.on("return", name="h")
        def sync_handler(event: ReturnEvent) -> None:
            time.sleep(attempt(event))
            record(event)

    for n in range(max(len(events) for events in plan.values())):
        for subject, events in plan.items():
            if n < len(events):
                assert deliver(hooks, sample_body("return.updated", return_id=subject, seq=n))
    drain(hooks)
    # Two failures at most, two retries: every event succeeded once, in order.
    assert dict(succeeded) == {s: list(range(len(events))) for s, events in plan.items()}
    assert redis.hlen(Keys().dead) == 0
    assert list(redis.scan_iter("rh:lane:*")) == []


@pytest.mark.parametrize("is_async", [True, False])
def test_a_slow_lane_does_not_hold_back_the_other_lanes_of_its_job(
    make_hooks: MakeHooks, is_async: bool
) -> None:
    finished: list[str] = []
    lock = threading.Lock()
    # The slow lane finishes only once every fast one has: were they held
    # back behind it, it would wait GATE_TIMEOUT and fail.
    fast_done = threading.Event()
    hooks = make_hooks(retries=0)

    def done(event: ReturnEvent) -> None:
        with lock:
            finished.append(event.return_id)
            if sum(r.startswith("fast-") for r in finished) == 5:
                fast_done.set()

    async def slow_or_fast(event: ReturnEvent) -> None:
        if event.return_id == "slow":
            await asyncio.to_thread(fast_done.wait, GATE_TIMEOUT)
            assert fast_done.is_set()
        done(event)

    def sync_slow_or_fast(event: ReturnEvent) -> None:
        if event.return_id == "slow":
            assert fast_done.wait(GATE_TIMEOUT)
        done(event)

    hooks.add(slow_or_fast if is_async else sync_slow_or_fast, "return", name="h")
    assert deliver(hooks, sample_body(return_id="slow"))
    for r in range(5):
        assert deliver(hooks, sample_body(return_id=f"fast-{r}"))
    drain(hooks)
    assert finished[-1] == "slow"  # the others did not wait for it
    assert sorted(finished[:-1]) == [f"fast-{r}" for r in range(5)]
