"""The run log: what each handler did with each event, found by return, order, type,
outcome and time, through the operator API (``redo_hooks.admin``)."""

from __future__ import annotations

import subprocess
import time

import orjson
import pytest
from redis import Redis

from redo_hooks import ReturnEvent
from redo_hooks.admin import Admin, DeadFilter, EventFilter, Selection
from redo_hooks.dispatch.lanes import bind
from redo_hooks.dispatch.worker import build
from redo_hooks.errors import ConfigurationError, GiveUp
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from . import dashboard_app
from .conftest import MakeHooks
from .processes import CLI, ROOT, env, start_workers


def one_pass(hooks: object) -> None:
    """Run what is queued now, once: scheduled retries stay scheduled."""
    worker, runtime = build(hooks)  # type: ignore[arg-type]
    try:
        worker.run(burst=True)
    finally:
        runtime.close()
        bind(None)


def body(subject: str, seq: int = 0, order: str = "#1001", kind: str = "return.created") -> bytes:
    return sample_body(
        kind,
        return_id=subject,
        order={"id": f"order-{order.lstrip('#')}", "name": order},
        merchantName=f"shop {seq}",
    )


def test_each_outcome_is_recorded_with_attempts_times_and_error(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=1, backoff=0)
    tries: dict[str, int] = {}

    @hooks.on("return.created", name="steady")
    def steady(event: ReturnEvent) -> None:
        pass

    @hooks.on("return.created", name="flaky")
    def flaky(event: ReturnEvent) -> None:
        tries[event.key] = tries.get(event.key, 0) + 1
        if event.return_id == "ret-dead" or (
            event.return_id == "ret-flaky" and tries[event.key] == 1
        ):
            raise RuntimeError(f"<b>boom</b> on try {tries[event.key]}")

    @hooks.on("return.created", park=True, name="parking")
    def parking(event: ReturnEvent) -> None:
        if event.return_id == "ret-park":
            raise GiveUp("refused for good")

    @hooks.on("return.created", latest_only=True, name="newest")
    def newest(event: ReturnEvent) -> None:
        pass

    for subject in ("ret-ok", "ret-flaky", "ret-dead", "ret-park"):
        assert deliver(hooks, body(subject))
    assert deliver(hooks, sample_body("return.updated", return_id="ret-unhandled"))
    started = time.time()
    drain(hooks, raise_on_dead=False)

    with Admin(hooks) as admin:
        runs = {e.return_id: {r.handler: r for r in e.runs} for e in admin.events().events}
        ok = runs["ret-ok"]
        assert {r.outcome for r in ok.values()} == {"ok"}
        assert ok["steady"].attempts == 1
        assert ok["steady"].started is not None and ok["steady"].started >= started - 1
        assert ok["steady"].finished is not None and ok["steady"].finished <= time.time() + 1
        assert runs["ret-flaky"]["flaky"].outcome == "ok"
        assert runs["ret-flaky"]["flaky"].attempts == 2
        dead = runs["ret-dead"]["flaky"]
        assert (dead.outcome, dead.attempts) == ("dead", 2)
        assert dead.error == "RuntimeError: <b>boom</b> on try 2"
        assert runs["ret-dead"]["steady"].outcome == "ok"  # one handler's failure is its own
        assert runs["ret-park"]["parking"].outcome == "parked"
        assert runs["ret-unhandled"] == {}
        unhandled = admin.events(EventFilter(outcome="unhandled")).events
        assert [e.return_id for e in unhandled] == ["ret-unhandled"]
        assert unhandled[0].outcome == "unhandled"
        assert [e.return_id for e in admin.events(EventFilter(outcome="dead")).events] == [
            "ret-dead"
        ]
        assert [e.return_id for e in admin.events(EventFilter(outcome="parked")).events] == [
            "ret-park"
        ]


def test_a_failed_attempt_waiting_for_its_retry_reads_retrying(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=3, backoff=3600)

    @hooks.on("return.created", name="later")
    def later(event: ReturnEvent) -> None:
        raise ConnectionError("warehouse down")

    assert deliver(hooks, body("ret-1"))
    with Admin(hooks) as admin:
        (waiting,) = admin.events().events
        assert [(r.handler, r.outcome, r.attempts) for r in waiting.runs] == [
            ("later", "waiting", 0)
        ]
        one_pass(hooks)
        (event,) = admin.events(EventFilter(outcome="retrying")).events
        (run,) = event.runs
        assert (run.outcome, run.attempts, run.error) == (
            "retrying",
            1,
            "ConnectionError: warehouse down",
        )
        assert admin.events(EventFilter(outcome="waiting")).events == []


def test_latest_only_skips_are_recorded(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()

    @hooks.on("return.updated", latest_only=True, name="newest")
    def newest(event: ReturnEvent) -> None:
        pass

    newer = sample_body(
        "return.updated", return_id="ret-1", return_={"updatedAt": "2026-12-01T10:00:00Z"}
    )
    older = sample_body(
        "return.updated", return_id="ret-1", return_={"updatedAt": "2026-12-01T09:00:00Z"}
    )
    assert deliver(hooks, newer) and deliver(hooks, older)
    drain(hooks)
    with Admin(hooks) as admin:
        (skipped,) = admin.events(EventFilter(outcome="skipped")).events
        assert skipped.runs[0].outcome == "skipped"
        timeline = admin.timeline("ret-1")
        assert [e.runs[0].outcome for e in timeline] == ["ok", "skipped"]


def test_search_by_return_order_type_and_time_pages_by_cursor(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="noop")
    for n in range(7):
        assert deliver(hooks, body(f"ret-{n % 3}", seq=n, order=f"#{100 + n % 2}"))
    assert deliver(hooks, body("ret-9", kind="return.backfill", order="#100"))
    drain(hooks)
    with Admin(hooks) as admin:
        everything = admin.events().events
        assert len(everything) == 8
        assert [e.received_at for e in everything] == sorted(
            (e.received_at for e in everything), reverse=True
        )
        seen, cursor = [], None
        while True:
            page = admin.events(cursor=cursor, limit=3)
            seen += [e.key for e in page.events]
            if page.cursor is None:
                break
            cursor = page.cursor
        assert seen == [e.key for e in everything]  # every event once, in order
        assert {e.return_id for e in admin.events(EventFilter(return_id="ret-1")).events} == {
            "ret-1"
        }
        by_order = admin.events(EventFilter(order="#101")).events
        assert {e.return_id for e in by_order} == {"ret-0", "ret-1", "ret-2"}
        assert len(admin.events(EventFilter(order="101")).events) == len(by_order)  # no "#"
        assert len(admin.events(EventFilter(order="order-101")).events) == len(by_order)  # id
        assert [
            e.return_id for e in admin.events(EventFilter(event_name="return.backfill")).events
        ] == ["ret-9"]
        middle = everything[3].received_at
        newer = admin.events(EventFilter(since=middle)).events
        assert [e.key for e in newer] == [e.key for e in everything[:4]]
        older = admin.events(EventFilter(until=middle, outcome="ok")).events
        assert [e.key for e in older] == [e.key for e in everything[3:]]


def test_bad_filters_are_refused_with_the_valid_names(make_hooks: MakeHooks) -> None:
    with pytest.raises(ConfigurationError, match=r"return\.created"):
        EventFilter(event_name="created")
    with pytest.raises(ConfigurationError, match="unhandled"):
        EventFilter(outcome="fine")


def test_retention_removes_runs_and_index_entries_with_their_events(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retention=4, dedupe_ttl=1)
    hooks.add(lambda event: None, "return.created", name="noop")
    assert deliver(hooks, body("ret-1"))
    assert deliver(hooks, sample_body("return.updated", return_id="ret-2"))  # unhandled
    with Admin(hooks) as admin:
        # Before they expire (the unhandled one is only kept `retention` from now).
        assert len(admin.events().events) == 2
        drain(hooks)
        wait_for(lambda: not any(redis.scan_iter("rh:ev:*")), 20, "the events to expire")
        assert admin.events().events == []
        assert admin.timeline("ret-1") == []
        assert admin.events(EventFilter(order="#1001")).events == []
        wait_for(
            lambda: not any(redis.scan_iter("rh:ret:*")) and not any(redis.scan_iter("rh:ord:*")),
            10,
            "the return and order index buckets to expire",
        )


def test_admin_reads_with_settings_alone_and_acts_on_dead_letters(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks(retries=0)
    fail = {"on": True}

    @hooks.on("return.created", name="picky")
    def picky(event: ReturnEvent) -> None:
        if fail["on"]:
            raise ValueError("not yet")

    for n in range(4):
        assert deliver(hooks, body(f"ret-{n}"))
    drain(hooks, raise_on_dead=False)
    reader = Admin(hooks.settings)  # no app: reads only
    try:
        assert reader.status().dead_letters == 4
        page = reader.dead_letters(limit=3)
        assert len(page.letters) == 3 and page.cursor is not None
        rest = reader.dead_letters(cursor=page.cursor, limit=3)
        assert len(rest.letters) == 1 and rest.cursor is None
        assert len({d.id for d in page.letters + rest.letters}) == 4
        with pytest.raises(ConfigurationError, match=r"Admin\(hooks\)"):
            reader.retry_dead([page.letters[0].id])
        assert reader.status().dead_letters == 4  # refused: nothing changed
    finally:
        reader.close()
    fail["on"] = False
    with Admin(hooks) as admin:
        assert admin.retry_dead([page.letters[0].id]) == 1
        first = page.letters[0].return_id
        (event,) = admin.events(EventFilter(return_id=first)).events
        assert event.runs[0].outcome == "waiting"  # retried: runs again
        assert admin.count_dead(DeadFilter(return_id="ret-3")) == (1 if first != "ret-3" else 0)
        dropped = admin.drop_dead(where=DeadFilter(return_id="ret-3"))
        assert dropped == (0 if first == "ret-3" else 1)
        assert admin.retry_dead(where=DeadFilter(handler="picky")) == 3 - dropped
        assert admin.status().dead_letters == 0
        drain(hooks)
        outcomes = {e.return_id: {r.outcome for r in e.runs} for e in admin.events().events}
        # The dropped letter's run stays dead (its lanes ran concurrently, so
        # which return's letter is newest, and kept, varies); the rest ran.
        assert outcomes.pop("ret-3") == ({"ok"} if first == "ret-3" else {"dead"})
        assert set(outcomes) == {"ret-0", "ret-1", "ret-2"}
        assert all(runs == {"ok"} for runs in outcomes.values())


def test_replay_dry_run_counts_first_and_changes_nothing(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    hooks.add(lambda event: None, "return.created", name="noop")
    for n in range(3):
        assert deliver(hooks, body(f"ret-{n}"))
    drain(hooks)
    with Admin(hooks) as admin:
        before = redis.dbsize()
        counts = admin.replay(Selection(return_id="ret-1"), dry_run=True)
        assert dict(counts) == {"noop": 1}
        assert redis.dbsize() == before
        assert admin.replay(Selection(return_id="ret-1")) == counts
        (event,) = admin.events(EventFilter(return_id="ret-1")).events
        assert event.runs[0].outcome == "waiting"
        drain(hooks)
        assert admin.timeline("ret-1")[0].runs[0].attempts == 1


def test_the_events_command_prints_the_search(
    make_hooks: MakeHooks, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_RETRIES", "0")
    hooks = make_hooks(retries=0)
    hooks.registry = dashboard_app.hooks.registry
    Redis.from_url(redis_url).set("dash:broken", 1)
    for subject in ("ret-1", "ret-2"):
        assert deliver(hooks, body(subject, order=f"#{subject[-1]}00"))
    worker = start_workers("tests.dashboard_app:hooks", env(redis_url, "s" * 20), "--burst")
    assert worker.wait(timeout=60) == 0
    app = "tests.dashboard_app:hooks"
    environ = env(redis_url, "s" * 20)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        # A process of its own: the app reads REDO_HOOKS_REDIS_URL when imported.
        command = [*CLI, "--log-level", "ERROR", "events", app, *args]
        return subprocess.run(
            command, env=environ, cwd=ROOT, capture_output=True, text=True, check=False
        )

    found = cli("--order", "200", "--json")
    assert found.returncode == 0, found.stderr
    (line,) = found.stdout.splitlines()
    event = orjson.loads(line)
    assert event["return_id"] == "ret-2" and event["outcome"] == "dead"
    runs = {r["handler"]: r for r in event["runs"]}
    assert runs["dash.flaky"]["error"] == "RuntimeError: warehouse refused return ret-2"
    assert runs["dash.steady"]["outcome"] == "ok"
    readable = cli("--outcome", "dead").stdout
    assert "ret-1" in readable and "ret-2" in readable and "warehouse refused" in readable
    refused = cli("--type", "created")
    assert refused.returncode != 0 and "return.created" in refused.stderr


@pytest.mark.parametrize("fits", [True, False], ids=["typed", "mended"])
def test_an_event_with_its_order_only_inside_the_return_is_found_by_it(
    make_hooks: MakeHooks, fits: bool
) -> None:
    """Redo's body requires no field: ``order`` may come only as ``return.order``."""
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="noop")
    event = orjson.loads(sample_body(return_id="ret-inner"))
    del event["order"]
    event["return"]["order"] = {"id": "order-777", "name": "#777"}
    if not fits:  # a field of a type the models do not expect: the tolerant path
        event["return"]["createdAt"] = 12
    assert deliver(hooks, orjson.dumps(event))
    with Admin(hooks) as admin:
        for asked in ("#777", "777", "order-777"):
            found = admin.events(EventFilter(order=asked)).events
            assert [e.return_id for e in found] == ["ret-inner"], asked
            assert found[0].order == "#777"  # shown on its row


def test_a_replay_or_a_retry_keeps_when_the_event_was_received(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Before: both overwrote the event's received time (its lists stayed sorted by the old)."""
    hooks = make_hooks(retries=0)
    failing = {"on": True}

    @hooks.on("return", name="flaky")
    def flaky(event: ReturnEvent) -> None:
        if failing["on"]:
            raise RuntimeError("no")

    assert deliver(hooks, body("ret-1"))
    drain(hooks, raise_on_dead=False)
    with Admin(hooks) as admin:
        (first,) = admin.events().events
        assert first.requeued_at is None
        failing["on"] = False
        assert admin.retry_dead(where=DeadFilter(return_id="ret-1")) == 1
        drain(hooks)
        (retried,) = admin.events().events
        assert retried.received_at == first.received_at
        assert retried.requeued_at is not None and retried.requeued_at >= first.received_at
        assert admin.replay(Selection(return_id="ret-1")) == {"flaky": 1}
        drain(hooks)
        (replayed,) = admin.events().events
        assert replayed.received_at == first.received_at
        assert replayed.requeued_at is not None and replayed.requeued_at >= retried.requeued_at
        assert replayed.to_dict()["requeued_at"] == replayed.requeued_at
        timeline = admin.timeline("ret-1")
        assert timeline[0].received_at == first.received_at
