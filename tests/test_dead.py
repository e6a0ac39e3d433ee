"""Dead letters from the CLI — list, show, retry (in lane order), drop — and
status and replay, with real worker processes draining the queue."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from types import ModuleType

import orjson
import pytest
from click.testing import CliRunner
from redis import Redis

from redo_hooks.cli import main
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, sample_event

from . import dead_app
from .conftest import SECRET
from .processes import env, start_workers

APP = "tests.dead_app:hooks"


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_RETRIES", "0")
    monkeypatch.setenv("REDO_HOOKS_BACKOFF", "0")
    yield importlib.reload(dead_app)  # settings are read when the module runs


@pytest.fixture(autouse=True)
def _environ(app: ModuleType, redis_url: str) -> None:
    global ENVIRON
    ENVIRON = env(redis_url, SECRET, REDO_HOOKS_RETRIES="0", REDO_HOOKS_BACKOFF="0")


ENVIRON: dict[str, str] = {}


def drain() -> None:
    """Run a real ``redo-hooks worker --burst`` process until the queue is empty."""
    assert start_workers(APP, ENVIRON, "--burst").wait(timeout=60) == 0


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, ["--log-level", "ERROR", "dead", APP, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def done(redis: Redis, subject: str) -> list[int]:
    return [int(x) for x in redis.lrange(f"dead:done:{subject}", 0, -1)]


def test_list_show_and_retry_after_a_fix_in_lane_order(app: ModuleType, redis: Redis) -> None:
    redis.set("dead:broken", 1)
    for n in range(3):
        deliver(app.hooks, sample_event("return.updated", return_id="ret-x", seq=n))
    drain()
    listed = [orjson.loads(line) for line in cli("list", "--json").splitlines()]
    assert [d["return_id"] for d in listed] == ["ret-x"] * 3
    listed.reverse()  # listed newest first, as the dashboard lists them
    assert [d["error"][-1] for d in listed] == ["0", "1", "2"]
    assert all(d["handler"] == "dead.flaky" and d["attempts"] == 1 for d in listed)
    assert "ret-x" in cli("list") and "no dead letters" not in cli("list")
    assert cli("list", "--older-than", "1h") == "no dead letters\n"
    assert cli("list", "--older-than", "0s") != "no dead letters\n"
    shown = cli("show", listed[0]["id"])
    assert "RuntimeError: bug while handling event 0" in shown and "Traceback" in shown

    redis.delete("dead:broken")  # the bug is fixed and deployed
    out = cli("retry", "--return", "ret-x")
    assert "3 dead letter(s) queued again" in out
    drain()
    assert done(redis, "ret-x") == [0, 1, 2]
    assert cli("list") == "no dead letters\n"
    for d in listed:  # the events are released to expire after the retention
        assert 0 < redis.ttl(Keys().event(d["event_key"])) <= 7 * 86_400
    assert "0 dead letter(s) queued again" in cli("retry", "--all")
    assert orjson.loads(cli("retry", "--all", "--json")) == {"retried": []}


def test_drop_forgets_and_releases_the_event(app: ModuleType, redis: Redis) -> None:
    redis.set("dead:broken", 1)
    deliver(app.hooks, sample_event("return.updated", return_id="ret-y", seq=0))
    drain()
    (letter,) = [orjson.loads(line) for line in cli("list", "--json").splitlines()]
    event = Keys().event(letter["event_key"])
    assert redis.ttl(event) == -1  # held by the dead letter
    assert f"dropped {letter['id']}" in cli("drop", letter["id"])
    assert 0 < redis.ttl(event) <= 7 * 86_400
    assert cli("list") == "no dead letters\n"
    result = CliRunner().invoke(main, ["dead", APP, "drop", letter["id"]])
    assert result.exit_code == 2 and "no dead letter" in result.output
    assert done(redis, "ret-y") == []


def test_retry_and_drop_need_a_selection(app: ModuleType) -> None:
    for action in ("retry", "drop"):
        result = CliRunner().invoke(main, ["dead", APP, action])
        assert result.exit_code == 2
        assert "--all" in result.output


def test_status_counts_waiting_events_dead_letters_and_the_oldest_wait(
    app: ModuleType, redis: Redis
) -> None:
    redis.set("dead:broken", 1)
    deliver(app.hooks, sample_event("return.updated", return_id="ret-s1", seq=0))
    drain()
    for n in range(3):
        deliver(app.hooks, sample_event("return.updated", return_id=f"ret-w{n % 2}", seq=n))
    result = CliRunner().invoke(main, ["status", APP, "--json"])
    assert result.exit_code == 0, result.output
    status = orjson.loads(result.stdout)
    # Per handler (two), one open job gathered both returns' lanes.
    assert status["queued_jobs"] == 2
    assert (status["lanes_waiting"], status["events_waiting"]) == (4, 6)
    assert status["dead_letters"] == 1
    assert status["oldest_waiting_age_s"] is not None and status["oldest_waiting_age_s"] >= 0
    readable = CliRunner().invoke(main, ["status", APP]).stdout
    assert re.search(r"^events waiting +6$", readable, re.M)
    assert re.search(r"^dead letters +1$", readable, re.M)
    assert re.search(r"^oldest wait +\d+\.\d s$", readable, re.M)


def parked_done(redis: Redis, subject: str) -> list[int]:
    return [int(x) for x in redis.lrange(f"park:done:{subject}", 0, -1)]


@pytest.mark.parametrize("action", ["retry", "drop"])
def test_a_parking_handler_holds_the_return_until_the_operator_acts(
    app: ModuleType, redis: Redis, action: str
) -> None:
    redis.set("park:broken", 1)
    for n in range(4):
        deliver(app.hooks, sample_event("return.updated", return_id="ret-p", seq=n))
    deliver(app.hooks, sample_event("return.updated", return_id="ret-q", seq=0))
    drain()
    assert parked_done(redis, "ret-p") == [0]  # held at event 1
    assert parked_done(redis, "ret-q") == [0]  # other returns go on
    # Later events keep arriving behind the parked head, and still wait.
    deliver(app.hooks, sample_event("return.updated", return_id="ret-p", seq=4))
    drain()
    assert parked_done(redis, "ret-p") == [0]
    status = orjson.loads(CliRunner().invoke(main, ["status", APP, "--json"]).stdout)
    assert status["parked_lanes"] == 1
    parked = [
        d
        for d in (
            orjson.loads(x) for x in cli("list", "--json", "--handler", "dead.parking").splitlines()
        )
    ]
    assert [d["parked"] for d in parked] == [True]
    # status names the parked lane (before: only counted it).
    assert status["parked"] == [
        {"handler": "dead.parking", "return": "ret-p", "dead_letter": parked[0]["id"]}
    ]
    readable = CliRunner().invoke(main, ["status", APP]).stdout
    named = readable.split("parked lanes (the oldest 1;", 1)[1].splitlines()
    assert named[1].split()[:3] == ["handler", "return", "dead"]
    assert named[2].split()[:3] == ["dead.parking", "ret-p", parked[0]["id"]]

    redis.delete("park:broken")
    assert "1 dead letter(s)" in cli(action, parked[0]["id"])
    drain()
    expected = [0, 1, 2, 3, 4] if action == "retry" else [0, 2, 3, 4]
    assert parked_done(redis, "ret-p") == expected  # in order, from the held head
    assert cli("list", "--handler", "dead.parking") == "no dead letters\n"
    assert list(redis.scan_iter("rh:lanestate:dead.parking:*")) == []


def test_replay_routes_stored_events_again_in_order_after_a_fix(
    app: ModuleType, redis: Redis
) -> None:
    for n in range(3):
        deliver(app.hooks, sample_event("return.updated", return_id="ret-r", seq=n))
    deliver(app.hooks, sample_event("return.created", return_id="ret-other", seq=9))
    drain()
    assert done(redis, "ret-r") == [0, 1, 2]

    def replay(*args: str) -> str:
        result = CliRunner().invoke(main, ["--log-level", "ERROR", "replay", APP, *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "would replay 3 event(s) to dead.flaky" in replay(
        "--return", "ret-r", "--handler", "dead.flaky", "--dry-run"
    )
    drain()
    assert done(redis, "ret-r") == [0, 1, 2]  # a dry run changes nothing
    out = replay("--return", "ret-r", "--since", "1h", "--handler", "dead.flaky")
    assert "replayed 3 event(s) to dead.flaky" in out
    drain()
    assert done(redis, "ret-r") == [0, 1, 2, 0, 1, 2]  # again, in the order received
    assert parked_done(redis, "ret-r") == [0, 1, 2]  # the other handler was not asked
    assert "replayed 1 event(s)" in replay("--type", "return.created", "--handler", "dead.flaky")
    assert "replayed 0 event-handler pair(s)" in replay("--until", "2000-01-01T00:00:00Z")
    as_json = orjson.loads(replay("--return", "ret-r", "--dry-run", "--json"))
    assert as_json == {"dry_run": True, "queued": {"dead.flaky": 3, "dead.parking": 3}}
    bad = CliRunner().invoke(main, ["replay", APP, "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
    unknown = CliRunner().invoke(main, ["replay", APP, "--handler", "nope"])
    assert unknown.exit_code == 2 and "dead.flaky" in unknown.output
    # Contradictory filters are refused, not read as "replay nothing".
    backwards = CliRunner().invoke(main, ["replay", APP, "--since", "1h", "--until", "2h"])
    assert backwards.exit_code == 2 and "--since is later than --until" in backwards.output
    drain()
    assert done(redis, "ret-r") == [0, 1, 2, 0, 1, 2]


def test_dead_list_and_show_read_well(app: ModuleType, redis: Redis) -> None:
    """Before: epoch times in show, misaligned keys, no body, type or order number;
    a multi-line error broke the list's table."""
    redis.set("dead:multiline", 1)
    for n, subject in enumerate(["ret-a", "ret-with-a-longer-id-0123456789"]):
        deliver(app.hooks, sample_event("return.updated", return_id=subject, seq=n))
    drain()
    listed = cli("list").splitlines()
    assert len(listed) == 1 + 2  # a header and one line per letter
    header = listed[0]
    assert header.split() == ["id", "dead", "at", "handler", "return", "tries", "error"]
    for line in listed[1:]:
        assert line.index("dead.") == header.index("handler")  # columns line up
        assert line.endswith("its second line | with a bar") is False
        assert re.search(r"RuntimeError: bug in event \d …$", line)
        # Local time with its offset, not an epoch.
        assert re.search(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}  ", line)

    # Both returns' lanes ran at once: either letter may be the older one.
    [letter] = [orjson.loads(x) for x in cli("list", "--json", "--return", "ret-a").splitlines()]
    shown = cli("show", letter["id"])
    fields = {
        m[1]: m[2] for m in re.finditer(r"^(\S+(?: \S+)?)\s{2,}(.*)$", shown.split("\n\n")[0], re.M)
    }
    assert fields["return"] == "ret-a" and fields["handler"] == letter["handler"]
    assert fields["event"] == f"return.updated ({letter['event_key']})"
    assert fields["order"] == "#1234 (64e4da943dd822979a70bd12)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", fields["dead at"])
    assert "its second line | with a bar" in shown  # the whole error, in the traceback
    body = orjson.loads(shown.split("event body:\n", 1)[1])
    assert body["return"]["id"] == "ret-a" and body["seq"] == 0
    as_json = orjson.loads(cli("show", letter["id"], "--json"))
    assert as_json["event"]["return"]["id"] == "ret-a"


def test_bulk_drop_retry_all_and_unfiltered_replay_ask_first(app: ModuleType, redis: Redis) -> None:
    """Before: `drop --all` and an unfiltered `replay` acted without a question."""
    redis.set("dead:broken", 1)
    deliver(app.hooks, sample_event("return.updated", return_id="ret-q", seq=0))
    deliver(app.hooks, sample_event("return.updated", return_id="ret-r", seq=1))
    drain()
    redis.delete("dead:broken")
    before = redis.hlen(Keys("rh").dead)
    assert before == 2

    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--log-level", "ERROR", *args], input=stdin)
        return result.exit_code, result.stdout + result.stderr

    for args in (["drop", "--all"], ["drop", "--handler", "dead.flaky"], ["retry", "--all"]):
        code, output = run("dead", APP, *args, stdin="n\n")
        assert code == 1 and "nothing changed" in output, output
        assert re.search(r"(Drop|Retry all) 2 dead letter\(s\).*\? \[y/N\]", output)
        code, output = run("dead", APP, *args, stdin="")  # no answer: no
        assert code == 1
    assert redis.hlen(Keys("rh").dead) == before

    code, output = run("replay", APP, stdin="n\n")
    assert code == 1 and "No filter: replay every stored event, 4 event-handler pair(s)?" in output
    assert redis.llen("rq:queue:redo-hooks") == 0
    code, output = run("replay", APP, "--dry-run")  # a dry run changes nothing: no question
    assert code == 0 and "would replay 4 event-handler pair(s) in all" in output

    code, output = run("dead", APP, "drop", "--return", "ret-q", "--yes")
    assert code == 0 and "1 dead letter(s) dropped" in output
    code, output = run("dead", APP, "drop", "--all", stdin="y\n")
    assert code == 0 and "1 dead letter(s) dropped" in output
    assert redis.hlen(Keys("rh").dead) == 0
