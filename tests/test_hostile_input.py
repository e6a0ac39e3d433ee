"""Hostile input is a 4xx or accepted, never a 5xx, and logs one line without a traceback.

Through the real ASGI apps (receiver and dashboard) on a real Redis; each
case also checks that a refusal wrote nothing.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
import pytest
from redis import Redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from redo_hooks import RedoHooks
from redo_hooks.testing import sample_body

from .conftest import SECRET, MakeHooks, snapshot

AUTH = {"Authorization": f"Bearer {SECRET}"}
ADMIN = "admin-token-0123456789abcdef"
TOKENS = [f"admin:ops={ADMIN}"]


def nested_under_unknown_field(depth: int) -> bytes:
    """The sample event with ``depth`` levels of arrays under a field the models do not know."""
    return sample_body(return_id="ret-deep")[:-1] + b',"junk":' + b"[" * depth + b"]" * depth + b"}"


def with_amount(digits: int, *, off_schema: bool) -> bytes:
    """The sample event with its first money amount a JSON number of ``digits`` digits.

    ``off_schema``: also a value that does not fit the models, so the body
    takes the step-by-step path (the standard library's parser there).
    """
    raw: Any = orjson.loads(sample_body(return_id=f"ret-big-{digits}"))
    if off_schema:
        raw["return"]["status"] = 5
    text = orjson.dumps(raw).decode()
    found = re.search(r'"amount":"[0-9.]+"', text)
    assert found is not None
    return text.replace(found.group(0), '"amount":' + "9" * digits, 1).encode()


def tracebacks(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if "exc_info" in e or "exception" in e or e["log_level"] == "error"]


@pytest.fixture
def receiver(make_hooks: MakeHooks) -> Iterator[tuple[TestClient, RedoHooks]]:
    hooks = make_hooks(max_body_bytes=512 * 1024)
    hooks.add(lambda event: None, "return", name="h")
    with TestClient(hooks.asgi(), raise_server_exceptions=False) as client:
        yield client, hooks


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_under_an_unknown_field_is_a_400_and_writes_nothing(
    receiver: tuple[TestClient, RedoHooks], redis: Redis, depth: int
) -> None:
    client, _ = receiver
    before = snapshot(redis)
    with capture_logs() as logs:
        answer = client.post("/", content=nested_under_unknown_field(depth), headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(":too-deep")
    assert snapshot(redis) == before
    assert tracebacks(logs) == []
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["request_rejected"]


@pytest.mark.parametrize("off_schema", [False, True])
def test_an_amount_of_5000_digits_is_accepted(
    receiver: tuple[TestClient, RedoHooks], redis: Redis, off_schema: bool
) -> None:
    client, _ = receiver
    with capture_logs() as logs:
        answer = client.post("/", content=with_amount(5000, off_schema=off_schema), headers=AUTH)
    assert answer.status_code == 202, answer.text
    assert redis.llen("rq:queue:redo-hooks") == 1  # stored, a job to run it
    assert tracebacks(logs) == []


@pytest.fixture
def dashboard(make_hooks: MakeHooks) -> Iterator[TestClient]:
    hooks = make_hooks()
    with TestClient(
        hooks.dashboard(tokens=TOKENS), raise_server_exceptions=False, base_url="http://shop.test"
    ) as client:
        yield client


@pytest.mark.parametrize("page", ["/events", "/dead"])
@pytest.mark.parametrize("cursor", ["x", "nan:abc", ":", "1e999999:k", "\u00e9:\u00e9"])
def test_a_mangled_cursor_is_a_400_naming_it(dashboard: TestClient, page: str, cursor: str) -> None:
    with capture_logs() as logs:
        answer = dashboard.get(
            page, params={"cursor": cursor}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
    if cursor.startswith("1e999999"):  # a valid (if odd) position: an empty page
        assert answer.status_code == 200
    else:
        assert answer.status_code == 400, answer.text
        assert "not a cursor this list gave" in answer.text
    assert tracebacks(logs) == []


@pytest.mark.parametrize("signature", ["\u00e9" * 43, "\u2603", "a" * 43 + "\u00ff", "\x00", "%%%"])
def test_a_forged_cookie_of_any_encoding_gets_the_login_page(
    dashboard: TestClient, signature: str
) -> None:
    """A known label with a forged signature: compare_digest refuses non-ASCII str."""
    payload = orjson.dumps({"l": "ops", "i": 2_000_000_000, "n": "x"})
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    cookie = f"{body}.{signature}"
    with capture_logs() as logs:
        answer = dashboard.get(
            "/",  # raw bytes: whatever a client sends, UTF-8 or not
            headers={b"cookie": f"redo_hooks_session={cookie}".encode()},
            follow_redirects=False,
        )
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2F"
    assert tracebacks(logs) == []


def test_the_login_redirect_ignores_the_host_header(dashboard: TestClient) -> None:
    answer = dashboard.post(
        "/login",
        data={"token": ADMIN},
        headers={"Host": "evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"  # a path on whatever host the browser asked
    dashboard.cookies.clear()  # logged out: the guard sends the browser to log in
    first = dashboard.get("/events", headers={"Host": "evil.example"}, follow_redirects=False)
    assert first.headers["location"] == "/login?next=%2Fevents"  # paths only, never a host
