"""``redo-hooks doctor`` and the quiet-receiver alert (``alert_no_events_after``):
the silent failures, found before the merchant does."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks.admin import Admin
from redo_hooks.cli import main
from redo_hooks.redo_api import RedoAPI
from redo_hooks.store.keys import Keys
from redo_hooks.store.replies import as_bytes
from redo_hooks.testing import deliver, sample_body

from . import issues_app
from .conftest import MakeHooks
from .fake_redo import API_SECRET, FakeRedo
from .processes import env, start_workers, stop, wait_registered
from .servers import serve_in_thread

APP = "tests.issues_app:hooks"
URL = "https://hooks.example.com/redo"
STORE = "store-a"
STORE_SECRET = "store-a-secret-0123456789abcdef"


@pytest.fixture
def app_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "REDO_HOOKS_REDIS_URL": redis_url,
        "REDO_HOOKS_SECRETS": f"{STORE}={STORE_SECRET}",
        "REDO_HOOKS_ALERT_NO_EVENTS_AFTER": "60",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    importlib.reload(issues_app)  # settings are read when it runs
    return values


@pytest.fixture
def redo() -> Iterator[tuple[FakeRedo, str]]:
    fake = FakeRedo()
    with serve_in_thread(fake.app()) as url:
        yield fake, url


def worker_env(redis_url: str) -> dict[str, str]:
    return env(redis_url, f"{STORE}={STORE_SECRET}", REDO_HOOKS_ALERT_NO_EVENTS_AFTER="60")


def doctor(*args: str, api: str | None = None) -> Result:
    extra = ["--api-url", api, "--api-secret", API_SECRET] if api else []
    return CliRunner(env={"REDO_API_SECRET": ""}).invoke(
        main, ["--log-level", "ERROR", "doctor", APP, *extra, *args]
    )


def lines(result: Result) -> dict[str, str]:
    """check name -> its line, from doctor's output."""
    found = {}
    for line in result.stdout.splitlines():
        mark, rest = line.split(None, 1)
        name, _, detail = rest.partition(": ")
        found[name] = f"{mark.strip()} {detail}"
    return found


def test_a_healthy_deployment_passes_and_each_fault_fails_with_its_own_line(
    app_env: dict[str, str], redis_url: str, redis: Redis, redo: tuple[FakeRedo, str]
) -> None:
    fake, api = redo
    with RedoAPI(API_SECRET, base_url=api) as client:
        client.create_webhook(STORE, URL, token=STORE_SECRET)
    redis.config_set("appendonly", "yes")
    assert deliver(issues_app.hooks, sample_body(return_id="ret-1"))
    worker = start_workers(APP, worker_env(redis_url))
    try:
        wait_registered(redis, [worker])
        healthy = doctor("--url", URL, api=api)
        assert healthy.exit_code == 0, healthy.output
        found = lines(healthy)
        assert found["maxmemory-policy"].startswith("ok")
        assert found["append-only file"].startswith("ok")
        assert re.fullmatch(r"ok \d worker process\(es\) registered", found["workers"])
        assert found["handlers"] == "ok every worker has this app's 3"
        assert found["events"].startswith("ok the last one was stored")
        assert found[f"Redo store {STORE}"].endswith("points here with an accepted secret")

        # Each silent failure, one at a time.
        redis.config_set("appendonly", "no")
        assert lines(doctor("--url", URL, api=api))["append-only file"].startswith("WARN")
        elsewhere = doctor("--url", "https://new.example.com/redo", api=api)
        assert elsewhere.exit_code == 1
        assert "no subscription points at https://new.example.com/redo" in elsewhere.stdout
        (hook,) = fake.webhooks
        fake.webhooks[hook]["callback"]["auth"]["bearer"]["token"] = "rotated-on-redos-side-01234"
        rotated = doctor("--url", URL, api=api)
        assert rotated.exit_code == 1 and "does not accept" in rotated.stdout
        redis.config_set("maxmemory-policy", "allkeys-lru")
        evicting = lines(doctor(api=None))
        assert evicting["maxmemory-policy"].startswith("FAIL allkeys-lru")
        assert evicting["Redo"].startswith("WARN not checked")
    finally:
        assert stop(worker) == 0
    gone = doctor()
    assert gone.exit_code == 1 and "no worker process is registered" in gone.stdout


def test_a_worker_with_other_handlers_fails_the_check(
    app_env: dict[str, str], redis_url: str, redis: Redis
) -> None:
    worker = start_workers(
        "tests.dead_app:hooks",
        worker_env(redis_url),
    )
    try:
        wait_registered(redis, [worker])
        result = doctor()
    finally:
        assert stop(worker) == 0
    assert result.exit_code == 1
    found = [v for k, v in lines(result).items() if k.startswith("handlers of ")]
    assert found  # its processes: one on the queue, one on the quarantine queue
    for line in found:
        assert line.startswith("FAIL") and "'audit', 'refund', 'ship'" in line
        assert "dead.flaky" in line


def test_status_and_the_overview_say_when_no_event_came_for_too_long(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(alert_no_events_after=60)
    hooks.add(lambda event: None, "return", name="noop")
    with Admin(hooks) as admin:
        assert admin.status().quiet  # nothing ever stored
        assert deliver(hooks, sample_body(return_id="ret-1"))
        fresh = admin.status()
        assert not fresh.quiet and fresh.last_event_at is not None
        # The newest event was received two minutes ago: Redo went quiet.
        (member,) = [as_bytes(m) for m in redis.zrange(Keys().events, 0, -1)]
        redis.zadd(Keys().events, {member: fresh.last_event_at - 120})
        assert admin.status().quiet
    off = make_hooks(alert_no_events_after=0)
    with Admin(off) as admin:
        assert not admin.status().quiet
    dashboard = hooks.dashboard(tokens=["admin:ops=admin-token-0123456789abcdef"])
    with TestClient(
        dashboard, headers={"Authorization": "Bearer admin-token-0123456789abcdef"}
    ) as browser:
        assert "Redo may have stopped sending here" in browser.get("/").text
