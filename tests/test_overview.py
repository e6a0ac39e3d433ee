"""The overview: per-handler figures, the workers panel, the time axis, auto-refresh."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import ReturnEvent
from redo_hooks.admin import Admin
from redo_hooks.dashboard.chart import TICK_MINUTES, bars
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from .conftest import SECRET, MakeHooks
from .processes import env, start_workers, stop, wait_registered

ADMIN = "admin-token-0123456789abcdef"
TOKENS = [f"admin:ops={ADMIN}"]


def client(app: Any) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})


def test_each_handler_shows_its_runs_failures_dead_letters_and_last_success(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks(retries=1)

    @hooks.on("return", name="steady")
    def steady(event: ReturnEvent) -> None:
        pass

    @hooks.on("return.created", name="broken")
    def broken(event: ReturnEvent) -> None:
        raise RuntimeError("no")

    for n in range(3):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    drain(hooks, raise_on_dead=False, retry_at_once=True)
    with Admin(hooks) as admin:
        by_name = {h.name: h for h in admin.handlers()}
    steady_h, broken_h = by_name["steady"], by_name["broken"]
    assert (steady_h.ok, steady_h.errors, steady_h.dead) == (3, 0, 0)
    assert steady_h.last_ok is not None and steady_h.p50 is not None
    assert (broken_h.ok, broken_h.errors, broken_h.retries, broken_h.dead) == (0, 6, 3, 3)
    assert broken_h.last_ok is None
    with client(hooks.dashboard(tokens=TOKENS)) as browser:
        page = browser.get("/").text
    table = page.split('<table class="handlers">', 1)[1].split("</table>", 1)[0]
    assert "<td>steady</td><td>3</td><td>0</td>" in table
    assert 'href="http://testserver/dead?handler=broken">3</a>' in table
    assert "≤ " in table  # a duration bucket
    assert "No worker process is registered" in page  # nothing runs them now


def test_the_workers_panel_lists_each_process_with_its_slots(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    hooks = make_hooks()
    worker = start_workers("tests.dead_app:hooks", env(redis_url, SECRET), "--concurrency", "1")
    try:
        wait_registered(redis, [worker])
        with Admin(hooks) as admin:
            # A service: its processes on the queue, and one on the quarantine queue alone.
            wait_for(lambda: len(admin.workers()) == 2, 20, "both processes to register")
            normal, quarantine = sorted(admin.workers(), key=lambda w: w.queues)
        assert normal.queues == ("redo-hooks",)
        assert quarantine.queues == ("redo-hooks-quarantine",) and quarantine.slots == 1
        process = normal
        assert process.slots >= 1 and process.busy == 0 and process.last_beat is not None
        assert process.rq_version and process.python_version.startswith("3.")
        with client(hooks.dashboard(tokens=TOKENS)) as browser:
            page = browser.get("/").text
        assert f"<td>{process.pid}</td>" in page  # (its slots may still be registering)
    finally:
        assert stop(worker) == 0


def test_auto_refresh_is_a_meta_refresh_of_a_known_period(make_hooks: MakeHooks) -> None:
    with client(make_hooks().dashboard(tokens=TOKENS)) as browser:
        assert '<meta http-equiv="refresh" content="30">' in browser.get("/?refresh=30").text
        for asked in ("", "5", "0", "30;url=https://evil.example"):
            page = browser.get("/", params={"refresh": asked}).text
            assert "http-equiv" not in page, asked
        assert "?refresh=10" in browser.get("/").text  # the toggle


@given(start=st.integers(0, 2_000_000_000), minutes=st.integers(1, 180))
def test_the_time_axis_labels_every_tenth_minute_of_the_clock(start: int, minutes: int) -> None:
    chart = bars([1] * minutes, [0] * minutes, start)
    first = start // 60
    expected = [m for m in range(first, first + minutes) if m % TICK_MINUTES == 0]
    assert len(chart.ticks) == len(expected)
    for tick, minute in zip(chart.ticks, expected, strict=True):
        hour, mins = divmod(minute % (24 * 60), 60)
        assert tick.label == f"{hour:02d}:{mins:02d}"
        assert 0 <= tick.x <= chart.width
