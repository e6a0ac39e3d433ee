"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
served by a real ``redo-hooks dashboard`` process, with a real worker process behind it.

Every test runs at a desktop's width (1366 px) and a phone's (390 px);
screenshots of every page, at both, go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2 as httpx
import pytest
from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.store.replies import as_bytes
from redo_hooks.testing import deliver, sample_body, wait_for

from . import dashboard_app
from .processes import CLI, ROOT, env, free_port, start_workers, stop

# On a developer's machine without them the tests skip, saying so; in CI
# (scripts/test installs both) a missing browser is a failure, not a skip.
IN_CI = bool(os.environ.get("CI"))
if IN_CI:
    from playwright import sync_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
SHOTS = ROOT / "test-artifacts" / "screenshots"
APP = "tests.dashboard_app:hooks"
WEBHOOK_SECRET = "webhook-secret-never-on-a-page-42"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),  # one Chromium at a time on two cores
    pytest.mark.skipif(
        not IN_CI and not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (scripts/setup --browser installs it)",
    ),
]


@pytest.fixture
def hooks(redis_url: str) -> RedoHooks:
    hooks = RedoHooks(dashboard_app.hooks.settings, redis_url=redis_url, secrets=[WEBHOOK_SECRET])
    hooks.registry = dashboard_app.hooks.registry  # the app's handlers, on the test's Redis
    return hooks


@pytest.fixture
def server(redis_url: str) -> Iterator[str]:
    port = free_port()
    environ = env(
        redis_url, WEBHOOK_SECRET, REDO_HOOKS_DASHBOARD_TOKEN=f"admin:ops={ADMIN},viewer={READER}"
    )
    process = subprocess.Popen([*CLI, "dashboard", APP, "--port", str(port)], env=environ, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        assert process.poll() is None, "the dashboard exited"
        try:
            return httpx.get(url + "/login", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answering, 20, "the dashboard to answer")
        yield url
    finally:
        stop(process)


@pytest.fixture
def worker(redis_url: str) -> Iterator[None]:
    process = start_workers(APP, env(redis_url, WEBHOOK_SECRET))
    yield
    stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(params=[1366, 390], ids=["1366px", "390px"])
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of a desktop's width, and of a phone's: every test runs at both."""
    width: int = request.param
    context = browser.new_context(viewport={"width": width, "height": 900 if width > 500 else 844})
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    if not name.endswith(f"-{width}"):  # each width its own file
        name = f"{name}-{width}"
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(page: Any, url: str, token: str = ADMIN) -> None:
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def event(subject: str, order: str = "#1001", note: str = "") -> bytes:
    return sample_body(
        "return.created",
        return_id=subject,
        order={"id": f"order-{order.lstrip('#')}", "name": order},
        return_={"notes": note} if note else None,
    )


def redis_url_of(redis: Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"{kwargs['host']}:{kwargs['port']}"


def until_ok(page: Any, what: str) -> None:
    """Reload until the page shows ``what`` (the worker runs meanwhile)."""

    def shown() -> bool:
        page.reload()
        return bool(page.locator(f"text={what}").count())

    wait_for(shown, 30, f"the page to show {what!r}")


def test_no_page_shows_data_without_a_token(hooks: RedoHooks, server: str, page: Any) -> None:
    assert deliver(hooks, event("ret-secret-1"))
    for path in ("/", "/events", "/returns/ret-secret-1", "/dead", "/replay"):
        answer = httpx.get(server + path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?" + urlencode({"next": path})
        wrong = httpx.get(server + path, headers={"Authorization": "Bearer nope-nope-nope-nope"})
        assert wrong.status_code == 401 and "ret-secret-1" not in wrong.text
    page.goto(server + "/returns/ret-secret-1")
    assert page.url.endswith("/login?next=%2Freturns%2Fret-secret-1")
    # Only the path asked for comes back (in the form, to return to it): no data.
    assert "ret-secret-1" not in page.inner_text("body")
    assert page.content().count("ret-secret-1") == 1
    shot(page, "login")
    page.fill("#token", "not-a-token-at-all-000")
    page.click("button[type=submit]")
    assert "Unknown token" in page.content()
    assert (
        httpx.get(server + "/events", headers={"Authorization": f"Bearer {READER}"}).status_code
        == 200
    )


def test_log_in_search_a_return_and_read_its_timeline_escaped(
    hooks: RedoHooks, server: str, worker: None, page: Any, redis: Redis
) -> None:
    assert deliver(
        hooks, event("ret-a", "#2001", note="<script>window.pwned=1</script><b>fragile</b>")
    )
    assert deliver(hooks, event("ret-b", "#2002"))
    login(page, server)
    until_ok(page, "Events waiting")
    shot(page, "overview")
    page.click("text=Events")
    page.fill("input[name=order]", "2001")
    page.click("button:has-text('Search')")
    rows = page.locator("table.events tbody tr")
    assert rows.count() == 1 and "ret-a" in rows.first.inner_text()
    shot(page, "events")
    rows.first.locator("a", has_text="ret-a").click()
    assert page.url.endswith("/returns/ret-a")
    wait_for(
        lambda: page.reload() or page.locator("table.runs .outcome.ok").count() == 2,
        30,
        "both handlers' runs to be ok",
    )
    page.click("summary:has-text('Event body')")
    body = page.locator("pre.body").inner_text()
    assert "<script>window.pwned=1</script><b>fragile</b>" in body  # shown as text
    assert page.locator("pre.body b").count() == 0
    assert page.evaluate("window.pwned") is None
    shot(page, "timeline")
    for path in ("/", "/events", "/returns/ret-a", "/dead", "/replay"):
        page.goto(server + path)
        html = page.content()
        assert WEBHOOK_SECRET not in html and redis_url_of(redis) not in html
        assert ADMIN not in html  # the token is never echoed either


def test_retry_a_dead_letter_and_see_it_run(
    hooks: RedoHooks, server: str, worker: None, page: Any, redis: Redis
) -> None:
    redis.set("dash:broken", 1)
    assert deliver(hooks, event("ret-dead"))
    login(page, server)
    page.goto(server + "/dead")
    until_ok(page, "warehouse refused return ret-dead")
    shot(page, "dead")
    page.locator("table.dead a").first.click()
    assert "Traceback" in page.content() and "RuntimeError" in page.content()
    shot(page, "dead_letter")
    # The timeline shows the dead run with its error, too.
    page.click("dd a:has-text('ret-dead')")
    dead_run = page.locator("table.runs tr", has_text="dash.flaky")
    assert "dead" in dead_run.inner_text() and "warehouse refused" in dead_run.inner_text()
    page.go_back()
    redis.delete("dash:broken")
    page.click("button:has-text('Retry')")
    assert "retried 1 dead letter(s)" in page.content()
    page.goto(server + "/returns/ret-dead")
    wait_for(
        lambda: page.reload() or page.locator("table.runs .outcome.ok").count() == 2,
        30,
        "the retried run to succeed",
    )
    assert redis.hlen("rh:dead") == 0


def test_bulk_drop_by_filter_after_confirming_the_count(
    hooks: RedoHooks, server: str, worker: None, page: Any, redis: Redis
) -> None:
    redis.set("dash:broken", 1)
    for subject in ("ret-x", "ret-x2", "ret-y"):
        assert deliver(hooks, event(subject))
    wait_for(lambda: redis.hlen("rh:dead") == 3, 30, "three dead letters")
    login(page, server)
    page.goto(server + "/dead?return_id=ret-x")
    assert page.locator("table.dead tbody tr").count() == 1
    page.click("button:has-text('Drop all')")
    assert "Drop 1 dead letter(s)?" in page.content()
    shot(page, "dead_bulk_confirm")
    page.click("button:has-text('Yes, drop 1')")
    assert "dropped 1 dead letter(s)" in page.content()
    remaining = {Redis.from_url(hooks.settings.redis_url).hlen("rh:dead")}
    assert remaining == {2}
    page.goto(server + "/dead")
    text = page.locator("table.dead").inner_text()
    assert "ret-x2" in text and "ret-y" in text and "\tret-x\t" not in text


def test_replay_counts_first_then_replays(
    hooks: RedoHooks, server: str, worker: None, page: Any, redis: Redis
) -> None:
    for subject in ("ret-r1", "ret-r2"):
        assert deliver(hooks, event(subject))
    wait_for(
        lambda: (
            redis.llen("rq:queue:redo-hooks") == 0
            and redis.get("rh:waiting:events") in (b"0", None)
        ),
        30,
        "the events to run",
    )
    login(page, server)
    page.goto(server + "/replay")
    page.fill("input[name=return_id]", "ret-r1")
    page.click("button:has-text('Count')")
    assert page.locator("#dry-run").inner_text().startswith("A replay would route 2")
    shot(page, "replay")
    before = redis.zcard("rh:events")
    page.click("button:has-text('Replay 2')")
    assert "Replayed 2 event-handler pair(s)" in page.content()
    assert redis.zcard("rh:events") == before
    page.goto(server + "/returns/ret-r1")
    wait_for(
        lambda: page.reload() or "2</td>" in page.locator("table.runs").inner_html(),
        30,
        "the replayed runs (second attempt... counted anew) to finish",
    )


def test_a_read_only_token_cannot_retry_and_csrf_less_posts_are_refused(
    hooks: RedoHooks, server: str, worker: None, page: Any, redis: Redis
) -> None:
    redis.set("dash:broken", 1)
    assert deliver(hooks, event("ret-ro"))
    wait_for(lambda: redis.hlen("rh:dead") == 1, 30, "the event to be dead-lettered")
    (dead_id,) = [as_bytes(i).decode() for i in redis.hkeys("rh:dead")]
    login(page, server, READER)
    page.goto(server + "/dead")
    assert "ret-ro" in page.content()
    assert page.locator("button:has-text('Retry')").count() == 0  # no buttons for a reader
    csrf = page.locator("form.inline input[name=csrf]").first.get_attribute("value")
    forced = page.request.post(
        f"{server}/dead/{dead_id}/retry", form={"csrf": csrf or ""}, max_redirects=0
    )
    assert forced.status == 403
    bearer = httpx.post(
        f"{server}/dead/{dead_id}/drop", headers={"Authorization": f"Bearer {READER}"}
    )
    assert bearer.status_code == 403
    # An admin's session, but a form without its CSRF token (another site's form).
    page.context.clear_cookies()
    login(page, server, ADMIN)
    refused = page.request.post(f"{server}/dead/{dead_id}/drop", form={}, max_redirects=0)
    assert refused.status == 403
    assert redis.hexists("rh:dead", dead_id)  # nothing was retried or dropped


def test_it_refuses_to_start_without_a_token(redis_url: str) -> None:
    def dashboard(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "dashboard", APP, "--port", str(free_port()), *options],
            env=env(redis_url, WEBHOOK_SECRET),
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )

    refused = dashboard()
    assert refused.returncode != 0 and "REDO_HOOKS_DASHBOARD_TOKEN" in refused.stderr
    exposed = dashboard("--host", "0.0.0.0", "--no-token")  # noqa: S104 (refused: the point)
    assert exposed.returncode != 0 and "loopback" in exposed.stderr


def test_issues_group_twelve_failing_returns_and_no_page_scrolls_sideways_at_390px(
    hooks: RedoHooks, server: str, worker: None, browser: Any, redis: Redis
) -> None:
    redis.set("dash:broken", 1)
    for n in range(12):
        assert deliver(hooks, event(f"ret-{n:02d}", order=f"#{2000 + n}"))
    wait_for(lambda: redis.hlen("rh:dead") == 12, 30, "twelve dead letters")
    for width, height in ((1366, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        try:
            login(page, server)
            page.goto(server + "/issues")
            row = page.locator("table.issues tbody tr")
            assert row.count() == 1
            assert "RuntimeError: warehouse refused return ret-<n>" in row.inner_text()
            assert row.locator("td").nth(2).inner_text() == str(redis.hlen("rh:dead"))
            shot(page, f"issues-{width}")
            row.locator("a").first.click()
            assert "Traceback" in page.content() and "12" in page.locator("dl").inner_text()
            shot(page, f"issue-{width}")
            issue_page = page.url
            for path in (
                "/issues",
                issue_page.removeprefix(server),
                "/events",
                "/dead",
                "/returns/ret-00",
                "/replay",
                "/timezone",
                "/",
            ):
                page.goto(server + path)
                sideways = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert sideways <= 0, f"{path} scrolls sideways by {sideways} px at {width} px"
            shot(page, f"overview-{width}")
            # An action at this width: one letter dropped, after its confirmation.
            page.goto(server + "/dead")
            drop = page.locator("a:has-text('Drop…')").first
            drop.scroll_into_view_if_needed()
            assert drop.is_visible()  # reachable: inside its table's own scroll box
            shot(page, f"dead-{width}")
            drop.click()
            assert "Drop this dead letter?" in page.content()
            shot(page, f"drop-confirm-{width}")
            page.click("button:has-text('Yes, drop it')")
            assert "dropped 1 dead letter(s)" in page.content()
        finally:
            context.close()
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    login(page, server)
    page.goto(server + "/issues")
    page.locator("table.issues a").first.click()
    page.click("button:has-text('Drop all 10')")  # two were dropped one by one above
    assert "Drop 10 dead letter(s)?" in page.content()
    page.click("button:has-text('Yes, drop 10')")
    assert "dropped 10 dead letter(s)" in page.content()
    assert redis.hlen("rh:dead") == 0
    page.goto(server + "/issues")
    assert "No open issues" in page.content()
    page.context.close()
