"""The dashboard's gate, in process: tokens, sessions, mounting under a path.

(The pages in a real browser: ``test_dashboard_browser.py``.)
"""

from __future__ import annotations

import html
import logging
import time
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from redo_hooks import ReturnEvent
from redo_hooks.dashboard.auth import SESSION_SECONDS, Gate, LoginThrottle, parse_tokens
from redo_hooks.errors import ConfigurationError
from redo_hooks.testing import deliver, drain, sample_body

from .conftest import MakeHooks, snapshot

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
TOKENS = [f"admin:ops={ADMIN}", f"viewer={READER}"]


def test_tokens_are_parsed_with_their_roles_and_never_shown() -> None:
    ops, viewer = parse_tokens(TOKENS)
    assert (ops.label, ops.role, viewer.label, viewer.role) == ("ops", "admin", "viewer", "read")
    assert ADMIN not in repr(ops) and READER not in repr(viewer)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("just-a-token-without-label", "label=token"),
        ("ops=short", "shorter than 16"),
        ("root:ops=" + "x" * 20, "'read' or 'admin'"),
        ("admin:=" + "x" * 20, "non-empty"),
    ],
)
def test_malformed_tokens_are_refused_without_echoing_them(entry: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as refused:
        parse_tokens([entry])
    assert "x" * 20 not in str(refused.value)


def test_a_label_used_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        parse_tokens([f"ops={ADMIN}", f"admin:ops={READER}"])


@given(st.text(max_size=200))
def test_no_forged_cookie_opens_a_session(cookie: str) -> None:
    assert Gate(parse_tokens(TOKENS)).session(cookie) is None


def test_sessions_are_signed_by_their_token_and_end() -> None:
    gate = Gate(parse_tokens(TOKENS))
    now = time.time()
    cookie = gate.issue("ops", now)
    viewer = gate.session(cookie, now)
    assert viewer is not None and viewer.admin and len(viewer.csrf) == 32
    body, _, signature = cookie.partition(".")
    assert gate.session(f"{body}.{signature[:-2]}xx", now) is None  # tampered
    assert gate.session(cookie, now + SESSION_SECONDS + 1) is None  # expired
    revoked = Gate(parse_tokens([f"viewer={READER}", f"admin:ops={'n' * 20}"]))
    assert revoked.session(cookie, now) is None  # its token changed: the session ended
    demoted = Gate(parse_tokens([f"ops={ADMIN}"])).session(cookie, now)
    assert demoted is not None and not demoted.admin  # the role is read each time


def test_mounted_under_a_path_it_logs_in_and_links_under_that_path(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="noop")
    assert deliver(hooks, sample_body(return_id="ret-mounted"))
    app = Starlette(routes=[Mount("/ops/redo", app=hooks.dashboard(tokens=TOKENS))])
    with TestClient(app, base_url="https://shop.example") as client:
        first = client.get("/ops/redo/events", follow_redirects=False)
        assert first.status_code == 303
        # A path, never a host; and the page that asked, under the mount.
        assert first.headers["location"] == "/ops/redo/login?next=%2Fops%2Fredo%2Fevents"
        logged = client.post(
            "/ops/redo/login",
            data={"token": ADMIN, "next": "/ops/redo/events"},
            follow_redirects=False,
        )
        assert logged.status_code == 303 and logged.headers["location"] == "/ops/redo/events"
        cookie = logged.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/ops/redo", "Secure"):
            assert attribute.lower() in cookie.lower(), attribute
        page = client.get("/ops/redo/events")
        assert page.status_code == 200
        assert 'href="https://shop.example/ops/redo/returns/ret-mounted"' in page.text
        assert "/ops/redo/static/style.css" in page.text


def test_without_tokens_it_refuses_unless_told_to_serve_loopback_only(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks()
    with pytest.raises(ConfigurationError, match="REDO_HOOKS_DASHBOARD_TOKEN"):
        hooks.dashboard()
    app = hooks.dashboard(allow_loopback_without_token=True)
    here: Any = TestClient(app, client=("127.0.0.1", 50000), base_url="http://127.0.0.1:8001")
    elsewhere: Any = TestClient(app, client=("203.0.113.9", 50000), base_url="http://127.0.0.1")
    with here, elsewhere:
        assert here.get("/").status_code == 200
        refused = elsewhere.get("/", headers={"Authorization": "Bearer anything"})
        assert refused.status_code == 401
        # A POST from this machine still needs the page's CSRF token.
        assert here.post("/replay", data={"confirm": "1"}).status_code == 403


def admin_client(app: Any) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})


def test_bad_filters_get_a_clear_400_and_change_nothing(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="noop")
    assert deliver(hooks, sample_body(return_id="ret-1"))
    before = snapshot(redis)
    with admin_client(hooks.dashboard(tokens=TOKENS)) as client:
        for query, says in [
            ("event=created", "did you mean &#39;return.created&#39;"),
            ("outcome=fine", "unknown outcome"),
            ("since=yesterday", "cannot read the time"),
        ]:
            page = client.get(f"/events?{query}")
            assert page.status_code == 400 and says in page.text, query
        replay = client.post("/replay", data={"handler": "nope", "confirm": "1"})
        assert replay.status_code == 400 and "no handler named" in replay.text
        swapped = client.post("/replay", data={"since": "1h", "until": "2h", "confirm": "1"})
        assert swapped.status_code == 400 and "swap them" in swapped.text
        assert client.post("/bulk", data={"action": "explode"}).status_code == 404
        assert client.post("/dead/nope/explode").status_code == 404
    assert snapshot(redis) == before  # nothing written


def test_every_action_is_logged_with_its_token_and_count(
    make_hooks: MakeHooks, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = make_hooks(retries=0)

    @hooks.on("return.created", name="failing")
    def failing(event: ReturnEvent) -> None:
        raise RuntimeError("no")

    for n in range(3):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    drain(hooks, raise_on_dead=False)
    caplog.set_level(logging.INFO, logger="redo_hooks.dashboard")
    with admin_client(hooks.dashboard(tokens=TOKENS)) as client:
        counted = client.post("/bulk", data={"action": "drop", "handler": "failing"})
        assert "Drop 3 dead letter(s)?" in counted.text
        dropped = client.post(
            "/bulk", data={"action": "drop", "handler": "failing", "confirm": "1"}
        )
        assert dropped.status_code == 200 and "dropped 3 dead letter(s)" in dropped.text
    (action,) = [r for r in caplog.records if "dashboard_action" in r.getMessage()]
    message = action.getMessage()
    assert "token='ops'" in message and "action='bulk_drop'" in message and "count=3" in message


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(notes=st.text(min_size=1, max_size=60))
def test_whatever_a_body_holds_is_shown_as_text(notes: str, make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    subject = "ret-" + uuid.uuid4().hex[:8]
    assert deliver(hooks, sample_body(return_id=subject, return_={"notes": notes}))
    with admin_client(hooks.dashboard(tokens=TOKENS)) as client:
        page = client.get(f"/returns/{subject}").text
    body = page.split('<pre class="body">', 1)[1].split("</pre>", 1)[0]
    assert "<" not in body  # every tag-like character escaped
    shown = orjson.loads(html.unescape(body))
    assert shown["return"]["notes"] == notes


def test_a_reader_may_log_out_but_not_act(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    with TestClient(hooks.dashboard(tokens=TOKENS)) as client:
        client.post("/login", data={"token": READER})
        page = client.get("/replay").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        refused = client.post("/replay", data={"csrf": csrf, "confirm": "1"})
        assert refused.status_code == 403 and "read-only" in refused.text
        out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"].endswith("/login")
        assert client.get("/", follow_redirects=False).status_code == 303  # session ended


def test_without_tokens_a_foreign_host_header_is_refused_dns_rebinding(
    make_hooks: MakeHooks,
) -> None:
    """Before: Host: evil.example got 200 and a usable CSRF token from this machine."""
    app = hooks_app = make_hooks().dashboard(allow_loopback_without_token=True)
    del hooks_app
    for host in ("localhost:8001", "127.0.0.1", "[::1]:8001"):
        with TestClient(app, client=("127.0.0.1", 50000), base_url=f"http://{host}") as ok:
            assert ok.get("/").status_code == 200, host
    # (A name that only starts like a loopback address can point anywhere.)
    for host in ("evil.example", "127.0.0.1.evil.example:8001", "localhost.evil.example"):
        with TestClient(app, client=("127.0.0.1", 50000), base_url=f"http://{host}") as rebound:
            page = rebound.get("/")
            posted = rebound.post("/replay", data={"confirm": "1"})
        assert page.status_code == 421 and "csrf" not in page.text.lower(), host
        assert posted.status_code == 421, host


def test_every_response_forbids_scripts_frames_and_caching(make_hooks: MakeHooks) -> None:
    app = make_hooks().dashboard(tokens=TOKENS)
    with TestClient(app) as client:
        answers = {
            "login": client.get("/login"),
            "page": client.get("/", headers={"Authorization": f"Bearer {ADMIN}"}),
            "static": client.get("/static/style.css"),
            "refused": client.get("/", headers={"Authorization": "Bearer nope"}),
        }
    for name, answer in answers.items():
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy, name
        assert "frame-ancestors 'none'" in policy, name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["cache-control"] == "no-store", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
    assert answers["refused"].status_code == 401
    assert answers["refused"].headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/events?outcome=dead", "/events?outcome=dead"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_login_goes_back_to_the_page_that_asked_and_never_elsewhere(
    make_hooks: MakeHooks, asked: str, lands: str
) -> None:
    app = make_hooks().dashboard(tokens=TOKENS)
    with TestClient(app, follow_redirects=False) as client:
        if asked == "/events?outcome=dead":  # a page sends an anonymous browser to log in
            sent = client.get(asked)
            assert sent.status_code == 303
            assert sent.headers["location"] == "/login?next=%2Fevents%3Foutcome%3Ddead"
            assert (
                'name="next" value="/events?outcome=dead"'
                in client.get(sent.headers["location"]).text
            )
        logged = client.post("/login", data={"token": ADMIN, "next": asked})
    assert logged.status_code == 303 and logged.headers["location"] == lands


def test_without_tokens_a_post_from_a_page_of_another_site_is_refused(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    app = make_hooks().dashboard(allow_loopback_without_token=True)
    here = ("127.0.0.1", 50000)
    with TestClient(app, client=here, base_url="http://127.0.0.1:8001") as client:
        form = client.get("/replay").text
        csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        before = snapshot(redis)
        for origin in ("http://evil.example", "null", "https://127.0.0.1.evil.example"):
            posted = client.post(
                "/replay", data={"csrf": csrf, "confirm": "1"}, headers={"Origin": origin}
            )
            assert posted.status_code == 403 and "no form from" in posted.text, origin
        assert snapshot(redis) == before  # nothing replayed
        same = client.post(
            "/replay",
            data={"csrf": csrf, "return_id": "ret-none"},
            headers={"Origin": "http://127.0.0.1:8001"},
        )
        assert same.status_code == 200  # a page of this machine: its form is read


def test_failed_logins_are_throttled_per_client(make_hooks: MakeHooks) -> None:
    app = make_hooks().dashboard(tokens=TOKENS)
    guesser: Any = TestClient(app, client=("203.0.113.7", 1), follow_redirects=False)
    other: Any = TestClient(app, client=("203.0.113.8", 1), follow_redirects=False)
    with guesser, other:
        for n in range(10):
            assert guesser.post("/login", data={"token": f"guess-{n:020d}"}).status_code == 401
        refused = guesser.post("/login", data={"token": ADMIN})  # even the right one, now
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert other.post("/login", data={"token": ADMIN}).status_code == 303


def test_the_login_throttle_forgets_old_failures_and_old_clients() -> None:
    throttle = LoginThrottle(attempts=3, window=60, clients=2)
    for t in (0, 1, 2):
        throttle.failed("a", now=t)
    assert throttle.wait("a", now=3) == pytest.approx(57)
    assert throttle.wait("a", now=60.5) == 0  # the first failure aged out
    throttle.failed("b", now=61)
    throttle.failed("c", now=62)  # over two clients: the least recently seen goes
    assert throttle.wait("a", now=62) == 0
    throttle.succeeded("b")
    assert throttle.wait("b", now=62) == 0


def test_a_link_to_a_return_survives_the_login(make_hooks: MakeHooks) -> None:
    app = make_hooks().dashboard(tokens=TOKENS)
    with TestClient(app, follow_redirects=False) as client:
        sent = client.get("/returns/ret-42")
        assert sent.headers["location"] == "/login?next=%2Freturns%2Fret-42"
        form = client.get(sent.headers["location"]).text
        assert 'name="next" value="/returns/ret-42"' in form
        back = client.post("/login", data={"token": ADMIN, "next": "/returns/ret-42"})
        assert back.status_code == 303 and back.headers["location"] == "/returns/ret-42"
