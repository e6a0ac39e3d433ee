"""Handler calls: timeouts never overlap a lane, bulkheads between sync handlers, stops."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import defaultdict

import pytest
from redis import Redis

from redo_hooks import Failure, HandlerContext, RedoHooks, ReturnEvent
from redo_hooks.dispatch.calls import fair_shares
from redo_hooks.dispatch.handlers import Registry
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from . import bulkhead_app
from .conftest import SECRET, MakeHooks
from .processes import env, start_workers, stop


class Spans:
    """When each attempt's work ran, per return: (event seq, start, end)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_return: dict[str, list[tuple[int, float, float]]] = defaultdict(list)

    def record(self, subject: str, seq: int, start: float) -> None:
        with self.lock:
            self.by_return[subject].append((seq, start, time.monotonic()))

    def overlaps(self) -> list[str]:
        """Returns where one attempt's work started before an earlier one's had ended."""
        found = []
        for subject, unordered in self.by_return.items():
            spans = sorted(unordered, key=lambda s: s[1])
            for earlier, later in itertools.pairwise(spans):
                if later[1] < earlier[2]:
                    found.append(subject)
        return found


def test_an_async_timeout_waits_for_the_thread_it_started_before_the_next_attempt(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """timeout=0.5, work of 1.5 s in asyncio.to_thread, retries=2: 6 returns x 2 events."""
    hooks = make_hooks(retries=2, backoff=0)
    spans = Spans()
    timed_out: list[float] = []

    def work(subject: str, seq: int) -> None:
        start = time.monotonic()
        time.sleep(1.5 if seq == 0 else 0.01)
        spans.record(subject, seq, start)

    @hooks.on("return", name="threaded", timeout=0.5)
    async def threaded(event: ReturnEvent) -> None:
        await asyncio.to_thread(work, event.return_id, int(event.raw["seq"]))

    @hooks.on_failure
    def seen(failure: Failure) -> None:
        if failure.kind == "timed_out":
            timed_out.append(time.monotonic())

    for r in range(6):
        for seq in range(2):
            assert deliver(hooks, sample_body(return_id=f"ret-{r}", seq=seq))
    drain(hooks, raise_on_dead=False, timeout=120)

    assert spans.overlaps() == []
    for r in range(6):
        seqs = [seq for seq, _, _ in sorted(spans.by_return[f"ret-{r}"], key=lambda s: s[1])]
        # Event 0 timed out three times, each attempt's thread waited for, then
        # event 1. (An attempt's work still queued for a thread when it timed
        # out is cancelled with it: it never ran, so it has no span.)
        assert seqs[-1] == 1 and set(seqs[:-1]) == {0} and 1 <= len(seqs) - 1 <= 3, seqs
    assert len(timed_out) == 18  # said at once, each time
    assert redis.hlen("rh:dead") == 6  # event 0 of each return, after its retries


def test_a_sync_timeout_is_said_at_once_and_the_lane_waits_for_the_thread(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=1, backoff=0)
    spans = Spans()
    said: list[tuple[str, float]] = []
    released = threading.Event()

    @hooks.on("return", name="slow", timeout=0.3)
    def slow(event: ReturnEvent, ctx: HandlerContext) -> None:
        start = time.monotonic()
        if ctx.attempt == 1:
            # Held until the timeout was said: a timeout that waited for the
            # thread before saying so would never release it.
            released.wait(30)
        spans.record(event.return_id, int(event.raw["seq"]), start)

    @hooks.on_failure
    def seen(failure: Failure) -> None:
        said.append((failure.kind, time.monotonic()))
        if failure.kind == "timed_out":
            released.set()

    assert deliver(hooks, sample_body(return_id="ret-s", seq=0))
    assert deliver(hooks, sample_body(return_id="ret-s", seq=1))
    drain(hooks, timeout=60)

    assert [kind for kind, _ in said] == ["timed_out", "attempt_failed"]
    assert spans.overlaps() == []
    # Attempt 1 (timed out), attempt 2 of event 0 (ok), then event 1.
    assert [seq for seq, _, _ in spans.by_return["ret-s"]] == [0, 0, 1]
    assert redis.hlen("rh:dead") == 0


@pytest.mark.slow
def test_a_slow_sync_handler_never_takes_the_threads_of_another(
    redis_url: str, redis: Redis
) -> None:
    """A worker of 4 threads: 20 lanes of a blocked handler leave the other handler its share."""
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    hooks.add(bulkhead_app.stuck, "return", name="bulk.stuck")
    hooks.add(bulkhead_app.fast, "return", name="bulk.fast")
    for r in range(20):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}"))
    worker = start_workers(
        "tests.bulkhead_app:hooks", env(redis_url, SECRET, REDO_HOOKS_SYNC_THREADS="4")
    )
    try:
        # If "stuck" could take every thread, "fast" would wait for its 20 s.
        wait_for(lambda: redis.llen("bulk:fast") == 20, 15, "the fast handler beside the stuck")
        assert redis.llen("bulk:stuck") == 0  # still blocked, holding only its share
        redis.set("bulk:release", 1)
        wait_for(lambda: redis.llen("bulk:stuck") == 20, 60, "the stuck handler, released")
    finally:
        assert stop(worker) == 0


def test_sync_handlers_share_the_threads_evenly_unless_they_say() -> None:
    registry = Registry()
    registry.add(lambda event: None, "return", name="a")
    registry.add(lambda event: None, "return", name="b", max_threads=10)
    registry.add(lambda event: None, "return", name="c")

    async def on_loop(event: ReturnEvent) -> None: ...

    registry.add(on_loop, "return", name="d")
    assert fair_shares(list(registry), 64) == {"a": 32, "b": 10, "c": 32}
    assert fair_shares(list(registry), 1) == {"a": 1, "b": 10, "c": 1}


def test_waiting_for_one_of_its_threads_does_not_count_against_a_handler_s_timeout(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """One thread, fifteen lanes of 0.1 s calls: the last waits 1.4 s for it, runs 0.1 s."""
    hooks = make_hooks(retries=0)
    said: list[str] = []
    ran: list[str] = []

    @hooks.on("return", name="narrow", timeout=1.0, max_threads=1)
    def narrow(event: ReturnEvent) -> None:
        time.sleep(0.1)
        ran.append(event.return_id)

    @hooks.on_failure
    def seen(failure: Failure) -> None:
        said.append(failure.kind)

    for r in range(15):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}"))
    drain(hooks, timeout=60)
    assert said == []  # no call ran over its second: the queue's wait is not its time
    assert sorted(ran) == sorted(f"ret-{r}" for r in range(15))
    assert redis.hlen("rh:dead") == 0
