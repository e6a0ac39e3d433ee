"""Replay by how each handler's run ended, and a replay of everything confirmed by its count."""

from __future__ import annotations

import importlib
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import ConfigurationError, RedoHooks, ReturnEvent
from redo_hooks.admin import Admin, Selection
from redo_hooks.cli import main
from redo_hooks.redo_api import RedoAPI
from redo_hooks.testing import deliver, drain, sample_body

from . import issues_app
from .conftest import MakeHooks, snapshot
from .fake_redo import API_SECRET, FakeRedo
from .servers import serve_in_thread

ADMIN = "admin-token-0123456789abcdef"


def app(make_hooks: MakeHooks) -> RedoHooks:
    hooks = make_hooks(retries=0)

    @hooks.on("return", name="steady")
    def steady(event: ReturnEvent) -> None:
        pass

    @hooks.on("return.created", name="broken")
    def broken(event: ReturnEvent) -> None:
        if event.return_id != "ret-fine":
            raise RuntimeError("no")

    for subject in ("ret-0", "ret-1", "ret-fine"):
        assert deliver(hooks, sample_body(return_id=subject))
    drain(hooks, raise_on_dead=False)
    return hooks


def test_a_replay_by_outcome_routes_only_to_the_handlers_whose_run_ended_so(
    make_hooks: MakeHooks,
) -> None:
    hooks = app(make_hooks)
    with Admin(hooks) as admin:
        assert admin.replay(Selection(outcome="failed"), dry_run=True) == {"broken": 2}
        assert admin.replay(Selection(outcome="ok"), dry_run=True) == {"steady": 3, "broken": 1}
        assert admin.replay(Selection(), dry_run=True) == {"steady": 3, "broken": 3}
        assert admin.replay(Selection(outcome="failed", return_id="ret-0")) == {"broken": 1}
    with pytest.raises(ConfigurationError, match="failed, ok, skipped"):
        Selection(outcome="dead-ish")


def test_the_cli_replays_by_outcome(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_RETRIES", "0")
    hooks = importlib.reload(issues_app).hooks
    redis.set("ship:down", 1)
    for n in range(2):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    drain(hooks, raise_on_dead=False)
    redis.delete("ship:down")

    def replay(*args: str) -> dict[str, Any]:
        result = CliRunner().invoke(main, ["replay", "tests.issues_app:hooks", *args, "--json"])
        assert result.exit_code == 0, result.output
        return dict(orjson.loads(result.stdout))

    assert replay("--outcome", "failed", "--dry-run")["queued"] == {"ship": 2}
    assert replay("--outcome", "ok", "--dry-run")["queued"] == {"audit": 2, "refund": 2}
    assert replay("--outcome", "failed")["queued"] == {"ship": 2}
    drain(hooks, raise_on_dead=False)
    bad = CliRunner().invoke(main, ["replay", "tests.issues_app:hooks", "--outcome", "dead"])
    assert bad.exit_code == 2 and "'dead' is not one of 'failed', 'ok', 'skipped'" in bad.output


def test_replaying_every_stored_event_needs_its_count_typed(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = app(make_hooks)
    dashboard: Any = hooks.dashboard(tokens=[f"admin:ops={ADMIN}"])
    with TestClient(dashboard, headers={"Authorization": f"Bearer {ADMIN}"}) as browser:
        # With a filter, one click confirms, as before.
        filtered = browser.post("/replay", data={"outcome": "failed"})
        assert "A replay would route <b>2</b>" in filtered.text and "Type " not in filtered.text
        again = browser.post("/replay", data={"outcome": "failed", "confirm": "1"})
        assert "Replayed 2 event-handler pair(s)" in again.text
        # Without one: every stored event, confirmed only by typing the count.
        counted = browser.post("/replay", data={})
        assert "A replay would route <b>6</b>" in counted.text
        assert "Type 6 to confirm" in counted.text
        before = snapshot(redis)
        for typed in ("", "5", "six"):
            refused = browser.post("/replay", data={"confirm": "1", "typed": typed})
            assert refused.status_code == 400 and "type the count" in refused.text, typed
        assert snapshot(redis) == before  # nothing replayed
        done = browser.post("/replay", data={"confirm": "1", "typed": "6"})
        assert "Replayed 6 event-handler pair(s)" in done.text


def test_the_dashboard_asks_redo_to_resend_after_showing_what_it_will_do(
    make_hooks: MakeHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeRedo()
    with serve_in_thread(fake.app()) as api:
        with RedoAPI(API_SECRET, base_url=api) as client:
            written = client.create_webhook(
                "store-a", "https://hooks.example.com/redo", token="t" * 20
            )
        monkeypatch.setenv("REDO_API_URL", api)
        monkeypatch.setenv("REDO_API_SECRET", API_SECRET)
        dashboard: Any = make_hooks().dashboard(tokens=[f"admin:ops={ADMIN}"])
        with TestClient(dashboard, headers={"Authorization": f"Bearer {ADMIN}"}) as browser:
            assert "Events that never arrived here" in browser.get("/replay").text
            preview = browser.post("/replay/redo", data={"store": "store-a", "since": "6h"})
            assert preview.status_code == 200 and "https://hooks.example.com/redo" in preview.text
            assert fake.replays == []  # only shown so far
            webhook = written.webhook.id
            done = browser.post(
                "/replay/redo",
                data={"store": "store-a", "since": "6h", "webhook": webhook, "confirm": "1"},
            )
            assert "Redo was asked to resend" in done.text
            assert [w for w, _ in fake.replays] == [webhook]
            for form, says in [
                ({"store": "", "since": "6h"}, "give the store id"),
                ({"store": "store-a", "since": "yesterday"}, "cannot read the time"),
                ({"store": "store-a", "since": "6h", "webhook": "nope", "confirm": "1"}, "404"),
            ]:
                refused = browser.post("/replay/redo", data=form)
                assert refused.status_code == 400 and says in refused.text, form
            assert len(fake.replays) == 1
    monkeypatch.delenv("REDO_API_SECRET")
    plain: Any = make_hooks().dashboard(tokens=[f"admin:ops={ADMIN}"])
    with TestClient(plain, headers={"Authorization": f"Bearer {ADMIN}"}) as browser:
        assert "Events that never arrived here" not in browser.get("/replay").text
        assert browser.post("/replay/redo", data={"store": "s", "since": "1h"}).status_code == 400
