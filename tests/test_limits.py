"""Per-handler limits, cluster-wide: max_concurrency and rate_limit."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import ConfigurationError, RedoHooks, ReturnEvent
from redo_hooks.admin import Admin
from redo_hooks.errors import RedoHooksError
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from . import limits_app
from .conftest import SECRET, MakeHooks, as_bytes
from .processes import env, start_workers, stop

APP = "tests.limits_app:hooks"


def load(redis_url: str, returns: int, *handlers: str) -> None:
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    for name in handlers:
        hooks.add(lambda event: None, "return", name=name)
    for r in range(returns):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}"))


def test_max_concurrency_holds_across_two_processes_and_the_fast_handler_is_not_held_back(
    redis_url: str, redis: Redis
) -> None:
    load(redis_url, 8, "limits.slow", "limits.fast")
    workers = [start_workers(APP, env(redis_url, SECRET)) for _ in range(2)]
    try:
        wait_for(lambda: redis.llen("limits:fast:done") == 8, 30, "the fast handler")
        slow_done_when_fast_was = redis.llen("limits:slow:done")
        wait_for(lambda: redis.llen("limits:slow:done") == 8, 60, "the capped handler")
    finally:
        codes = [stop(w) for w in workers]
    assert codes == [0, 0]
    assert int(redis.get("limits:slow:most") or 0) == 2  # reached, never exceeded
    assert len(set(redis.lrange("limits:slow:pids", 0, -1))) == 2  # both processes ran it
    assert slow_done_when_fast_was < 8  # fast finished while the capped one went on
    assert redis.zcard("rh:permits:limits.slow") == 0  # every permit given back


def test_a_killed_workers_permit_comes_back_when_its_lease_ends(
    redis_url: str, redis: Redis
) -> None:
    environ = env(redis_url, SECRET, REDO_HOOKS_HEARTBEAT_TTL="2", LIMITS_SLOW_SECONDS="60")
    load(redis_url, 1, "limits.slow")
    worker = start_workers(APP, environ)
    wait_for(lambda: redis.zcard("rh:permits:limits.slow") == 1, 20, "the run to take a permit")
    (dead_holder,) = redis.zrange("rh:permits:limits.slow", 0, -1)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    # Its lease's end, in Redis' clock: nobody renews it any more.
    lease_end = redis.zscore("rh:permits:limits.slow", as_bytes(dead_holder))
    assert lease_end is not None
    redis.delete("limits:slow:started")
    # Two new returns, two new workers (a run holds its worker 60 s): both
    # runs get a permit (the cap is 2) only once the dead worker's lease
    # (heartbeat_ttl, 2 s) has run out.
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    hooks.add(lambda event: None, "return", name="limits.slow")
    for r in range(2):
        assert deliver(hooks, sample_body(return_id=f"new-{r}"))
    again = start_workers(APP, environ, "--concurrency", "2")
    try:

        def both_running() -> bool:
            holders = redis.zrange("rh:permits:limits.slow", 0, -1)
            return len(holders) == 2 and dead_holder not in holders

        wait_for(both_running, 20, "the dead worker's permit to come back")
        wait_for(lambda: redis.llen("limits:slow:started") == 2, 20, "both runs to start")
        starts = sorted(float(x) for x in redis.lrange("limits:slow:started", 0, -1))
        # One permit was free at once; the other only once the dead lease ended.
        assert starts[1] >= lease_end, (starts, lease_end)
    finally:
        again.send_signal(signal.SIGKILL)
        again.wait(timeout=10)


def test_rate_limit_spreads_the_starts(make_hooks: MakeHooks) -> None:
    starts: list[float] = []
    hooks = make_hooks()

    @hooks.on("return", name="rated", rate_limit="4/s")
    def rated(event: ReturnEvent) -> None:
        starts.append(time.monotonic())

    for r in range(10):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}"))
    drain(hooks)
    assert len(starts) == 10
    starts.sort()
    for i in range(len(starts) - 4):
        assert starts[i + 4] - starts[i] >= 0.95, starts  # never 5 starts within a second
    assert starts[-1] - starts[0] >= 1.9


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_concurrency", 0, "max_concurrency must be an int >= 1"),
        ("rate_limit", "10 per minute", "rate_limit must read like '120/m'"),
        ("rate_limit", "0/s", "rate_limit must read like"),
    ],
)
def test_bad_limits_fail_at_registration(option: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        options: dict[str, Any] = {option: value}
        RedoHooks().add(limits_app.fast, "return", name="x", **options)


def test_one_process_runs_a_fast_handler_while_a_slow_one_holds_a_job(
    redis_url: str, redis: Redis
) -> None:
    """Guarantee 5 in one process: the slow handler's job holds one job slot, not the worker."""
    load(redis_url, 1, "limits.slow")
    workers = start_workers(APP, env(redis_url, SECRET, LIMITS_SLOW_SECONDS="4"))
    try:
        wait_for(lambda: redis.llen("limits:slow:pids") == 1, 20, "the slow run to start")
        load(redis_url, 5, "limits.fast")
        wait_for(lambda: redis.llen("limits:fast:done") == 5, 20, "the fast handler")
        assert redis.llen("limits:slow:done") == 0  # the slow run was still going
        wait_for(lambda: redis.llen("limits:slow:done") == 1, 20, "the slow run to end")
    finally:
        assert stop(workers) == 0


def test_throttled_lanes_are_counted_apart_from_retries(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Before: a handler held back by its rate_limit showed as "scheduled retries"."""
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="rated", rate_limit="1/m")
    for r in range(3):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}"))
    with pytest.raises(RedoHooksError, match="did not drain in time"):
        drain(hooks, timeout=2)  # one runs; the others wait a minute for a permit
    with Admin(hooks) as admin:
        status = admin.status()
    assert status.throttled_jobs >= 1 and status.scheduled_retries == 0
    assert status.events_waiting == 2
    assert int(redis.hget("rh:metrics", "throttled|rated") or 0) >= 1
    token = "admin-token-0123456789abcdef"
    dashboard = hooks.dashboard(tokens=[f"admin:ops={token}"])
    with TestClient(dashboard, headers={"Authorization": f"Bearer {token}"}) as browser:
        events = browser.get("/events").text
        assert events.count('class="outcome throttled"') == 2  # the run that ran: ok
        held = [f"ret-{r}" for r in range(3) if f"ret-{r}" in events]
        timelines = [browser.get(f"/returns/{r}").text for r in held]
        assert sum('class="outcome throttled"' in t for t in timelines) == 2
