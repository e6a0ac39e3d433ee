"""The dashboard's gate, in process: tokens, sessions, mounting under a path.

(The pages in a real browser: ``test_dashboard_browser.py``.)
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from redo_hooks.dashboard.auth import SESSION_SECONDS, Gate, parse_tokens
from redo_hooks.errors import ConfigurationError
from redo_hooks.testing import deliver, sample_body

from .conftest import MakeHooks

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
    assert deliver(hooks, sample_body(subject="ret-mounted"))
    app = Starlette(routes=[Mount("/ops/redo", app=hooks.dashboard(tokens=TOKENS))])
    with TestClient(app, base_url="https://shop.example") as client:
        first = client.get("/ops/redo/events", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "https://shop.example/ops/redo/login"
        logged = client.post("/ops/redo/login", data={"token": ADMIN}, follow_redirects=False)
        assert logged.status_code == 303
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
    here: Any = TestClient(app, client=("127.0.0.1", 50000))
    elsewhere: Any = TestClient(app, client=("203.0.113.9", 50000))
    with here, elsewhere:
        assert here.get("/").status_code == 200
        refused = elsewhere.get("/", headers={"Authorization": "Bearer anything"})
        assert refused.status_code == 401
        # A POST from this machine still needs the page's CSRF token.
        assert here.post("/replay", data={"confirm": "1"}).status_code == 403
