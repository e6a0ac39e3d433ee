"""Issues: dead letters grouped by handler and masked error, from counters kept
as letters are written, retried and dropped (``store/issues.py``)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.admin import Admin, DeadFilter
from redo_hooks.cli import main
from redo_hooks.store.issues import TITLE_CHARS, fingerprint, index_issues, mask
from redo_hooks.store.keys import Keys
from redo_hooks.store.replies import text
from redo_hooks.testing import deliver, drain, sample_event

from . import issues_app

KEYS = Keys()
APP = "tests.issues_app:hooks"


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> RedoHooks:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_RETRIES", "0")
    monkeypatch.setenv("REDO_HOOKS_BACKOFF", "0")
    hooks: RedoHooks = importlib.reload(issues_app).hooks  # settings are read when it runs
    return hooks


@pytest.fixture
def admin(app: RedoHooks) -> Iterator[Admin]:
    with Admin(app) as admin:
        yield admin


def consistent(redis: Redis) -> None:
    """Every issue's counters agree with the dead letters that are there."""
    letters = {text(k): orjson.loads(v) for k, v in redis.hgetall(KEYS.dead).items()}
    grouped: dict[str, set[str]] = {}
    for dead_id, letter in letters.items():
        grouped.setdefault(letter["fingerprint"], set()).add(dead_id)
    assert {text(f) for f in redis.zrange(KEYS.issues, 0, -1)} == set(grouped)
    for fp, ids in grouped.items():
        key = KEYS.issue(fp)
        assert {text(i) for i in redis.zrange(f"{key}:letters", 0, -1)} == ids
        assert int(redis.hget(key, "count") or 0) == len(ids)
        assert text(redis.hget(key, "sample") or b"") in ids  # a letter still there
        returns = {text(r): int(n) for r, n in redis.hgetall(f"{key}:returns").items()}
        expected: dict[str, int] = {}
        for dead_id in ids:
            expected[letters[dead_id]["subject"]] = expected.get(letters[dead_id]["subject"], 0) + 1
        assert returns == expected
        parked = sum(1 for dead_id in ids if letters[dead_id]["parked"])
        assert int(redis.hget(key, "parked") or 0) == parked
    # No issue key is left behind by an issue that closed.
    left = {text(k).split(":")[2] for k in redis.scan_iter(f"{KEYS.prefix}:issue:*")}
    assert left <= set(grouped)


def fail_returns(app: RedoHooks, redis: Redis, count: int, *down: str) -> None:
    """``count`` returns' created events, drained, with the ``down`` handlers failing for good."""
    for handler in down:
        redis.set(f"{handler}:down", 1)
    for n in range(count):
        assert deliver(app, sample_event("return.created", return_id=f"ret-{n}", seq=n))
    drain(app, raise_on_dead=False)


def test_twelve_returns_failing_alike_are_one_issue_with_its_counts(
    app: RedoHooks, admin: Admin, redis: Redis
) -> None:
    fail_returns(app, redis, 12, "ship")

    (issue,) = admin.issues()
    assert issue.handler == "ship" and issue.count == 12 and issue.returns == 12
    assert issue.title == "WarehouseDown: warehouse API returned <n> for return '…'"
    assert issue.parked == 0 and issue.seen == 12 and issue.first_seen <= issue.last_seen
    detail = admin.issue(issue.fingerprint)
    assert detail is not None and detail.sample is not None
    assert "warehouse API returned 503" in detail.sample.traceback
    assert detail.some_returns == sorted(f"ret-{n}" for n in range(12))
    letters = admin.dead_list(DeadFilter(issue=issue.fingerprint))
    assert len(letters) == 12 and detail.sample.id == letters[0].id  # the newest
    consistent(redis)

    redis.delete("ship:down")  # fixed: the whole issue is retried
    assert admin.retry_dead(where=DeadFilter(issue=issue.fingerprint)) == 12
    drain(app)
    assert admin.issues() == [] and admin.issue(issue.fingerprint) is None
    consistent(redis)


def test_issues_of_two_handlers_are_apart_and_parked_lanes_count_what_waits(
    app: RedoHooks, admin: Admin, redis: Redis
) -> None:
    fail_returns(app, redis, 3, "ship", "refund")
    # Events behind the parked refund lanes wait; ship and audit run them.
    for n in range(3):
        assert deliver(app, sample_event("return.updated", return_id="ret-0", seq=10 + n))
    drain(app, raise_on_dead=False)

    by_handler = {i.handler: i for i in admin.issues()}
    assert set(by_handler) == {"ship", "refund"}
    refund = by_handler["refund"]
    assert refund.count == 3 and refund.parked == 3 and refund.returns == 3
    assert refund.title == "TimeoutError: payments timed out after <n> s"
    detail = admin.issue(refund.fingerprint)
    assert detail is not None and detail.waiting_behind == 3
    assert [i.handler for i in admin.issues(handler="ship")] == ["ship"]
    consistent(redis)

    # Dropping an issue's sample (its newest letter) makes the next newest its sample.
    ship = by_handler["ship"]
    assert admin.drop_dead([ship.sample_id]) == 1
    after_drop = admin.issue(ship.fingerprint)
    assert after_drop is not None and after_drop.sample is not None
    assert after_drop.sample_id != ship.sample_id and after_drop.count == 2
    # Dropping one parked letter releases its lane; the issue keeps the others.
    (one,) = admin.dead_list(DeadFilter(issue=refund.fingerprint, return_id="ret-1"))
    assert admin.drop_dead([one.id]) == 1
    after = admin.issue(refund.fingerprint)
    assert after is not None and (after.count, after.parked, after.returns) == (2, 2, 2)
    consistent(redis)
    assert admin.drop_dead(where=DeadFilter(issue=by_handler["ship"].fingerprint)) == 2
    assert [i.handler for i in admin.issues()] == ["refund"]
    consistent(redis)


def test_a_new_failure_of_a_closed_issue_opens_it_again(
    app: RedoHooks, admin: Admin, redis: Redis
) -> None:
    redis.set("ship:down", 1)
    assert deliver(app, sample_event("return.created", return_id="ret-a", seq=0))
    drain(app, raise_on_dead=False)
    (first,) = admin.issues()
    assert admin.drop_dead(where=DeadFilter(issue=first.fingerprint)) == 1
    assert admin.issues() == []
    assert deliver(app, sample_event("return.created", return_id="ret-b", seq=1))
    drain(app, raise_on_dead=False)
    (again,) = admin.issues()
    assert again.fingerprint == first.fingerprint and again.count == 1 and again.seen == 1
    assert again.first_seen > first.first_seen
    consistent(redis)


def test_letters_from_before_issues_are_grouped_once_by_maintenance(
    app: RedoHooks, admin: Admin, redis: Redis
) -> None:
    fail_returns(app, redis, 4, "ship")
    # As 0.2 wrote them: records without a fingerprint, no issue keys.
    for dead_id, raw in redis.hgetall(KEYS.dead).items():
        record = orjson.loads(raw)
        del record["fingerprint"]
        redis.hset(KEYS.dead, dead_id, orjson.dumps(record))
    for key in redis.scan_iter(f"{KEYS.prefix}:issue*"):
        redis.delete(key)
    assert admin.issues() == []

    assert index_issues(redis, KEYS) == 4
    (issue,) = admin.issues()
    assert issue.count == 4 and issue.returns == 4
    consistent(redis)
    assert index_issues(redis, KEYS) == 0  # once
    assert admin.retry_dead(where=DeadFilter(issue=issue.fingerprint)) == 4
    consistent(redis)


def test_cli_lists_shows_and_acts_on_an_issue(app: RedoHooks, admin: Admin, redis: Redis) -> None:
    fail_returns(app, redis, 2, "ship")
    (issue,) = admin.issues()
    target = APP

    def cli(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["--log-level", "ERROR", *args])
        assert result.exit_code == code, result.output
        return result.stdout if code == 0 else result.stderr

    listed = cli("issues", target)
    assert issue.fingerprint in listed and "WarehouseDown" in listed
    (line,) = cli("issues", target, "--json").splitlines()
    assert orjson.loads(line)["count"] == 2
    shown = cli("issues", target, issue.fingerprint)
    assert "sample traceback" in shown and "ret-0, ret-1" in shown
    assert "no open issue" in cli("issues", target, "0" * 16, code=1)
    listed_dead = cli("dead", target, "list", "--issue", issue.fingerprint, "--json")
    assert len(listed_dead.splitlines()) == 2
    assert "2 dead letter(s) dropped" in cli(
        "dead", target, "drop", "--issue", issue.fingerprint, "--yes"
    )
    assert cli("issues", target) == "no open issues: no dead letters\n"
    consistent(redis)


#: Kinds of the parts of a message that vary between occurrences of one failure.
VARYING = [
    st.integers(0, 10**12).map(str),
    st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.uuids(version=4).map(str),
    st.uuids(version=4).map(lambda u: u.hex),
    st.text("abcdefghijklmnopqrstuvwxyz-_ 0123456789", max_size=20).map(lambda t: f"'{t}'"),
]


@settings(max_examples=200)
@given(data=st.data(), kinds=st.lists(st.sampled_from(VARYING), min_size=3, max_size=3))
def test_errors_that_differ_only_in_ids_numbers_and_quoted_values_group_together(
    data: st.DataObject, kinds: list[st.SearchStrategy[str]]
) -> None:
    first, second = ([data.draw(kind) for kind in kinds] for _ in range(2))

    def error(parts: list[str]) -> str:
        return f"HTTPError: order {parts[0]} of return {parts[1]} failed: {parts[2]}"

    assert fingerprint("ship", error(first)) == fingerprint("ship", error(second))
    assert fingerprint("ship", error(first)) != fingerprint("refund", error(first))
    assert fingerprint("ship", error(first))[0] != fingerprint("ship", "KeyError: order")[0]


@given(st.text(max_size=2000))
def test_any_error_masks_to_a_short_one_line_title_without_digits(error: str) -> None:
    title = mask(error)
    assert "\n" not in title and len(title) <= TITLE_CHARS
    assert re.search(r"\d", title) is None  # numbers, ids and quoted values are masked
