"""The traps a new user and an operator fell into, each closed (issue #14).

Each test here failed before its fix; the docstring says what happened then.
"""

from __future__ import annotations

import importlib
import logging
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
import structlog
from click.testing import CliRunner
from redis import Redis
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from redo_hooks import logs
from redo_hooks.cli import main
from redo_hooks.dev.redis_server import free_port
from redo_hooks.dev.runner import DATA_DIR, DevState
from redo_hooks.testing import deliver, sample_body, sample_event, wait_for

from .conftest import SECRET, MakeHooks
from .processes import ROOT, env, start_server, stop

APP = "examples.shop.hooks:hooks"
VALID_EVENTS = "return.created, return.updated, return.backfill"
AUTH = {"Authorization": f"Bearer {SECRET}"}
LONG_SECRET = "s3cret-a-long-enough-to-pass-0123456789"


@pytest.fixture
def fresh_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example app is imported afresh, reading the environment as it is now."""
    monkeypatch.delitem(sys.modules, "examples.shop.hooks", raising=False)
    # What a command sets in os.environ is undone after the test.
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", "")
    monkeypatch.delenv("REDO_HOOKS_REDIS_URL")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--log-level", "ERROR", *args])
    return result.exit_code, result.stdout, result.stderr


# 1. Operator commands and `redo-hooks dev`'s Redis.


def test_operator_commands_run_next_to_dev_read_its_redis_and_say_so(
    fresh_app: None,
    tmp_path: Path,
    redis_url: str,
    make_hooks: MakeHooks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: `status` here silently read redis://localhost:6379/0, not dev's Redis."""
    hooks = make_hooks()
    hooks.on("return.created", name="examples.shop.hooks.notify_warehouse")(lambda e: None)
    assert deliver(hooks, sample_event("return.created", return_id="ret-dev"))
    DevState("http://127.0.0.1:8000/", "s3cret", redis_url).save(tmp_path / DATA_DIR)
    monkeypatch.chdir(tmp_path)

    code, out, err = run("status", APP, "--json")
    assert code == 0, err
    assert orjson.loads(out)["events_waiting"] == 1  # dev's Redis, not the default
    assert f"Redis {redis_url} (the private Redis of `redo-hooks dev`" in err

    code, out, err = run("replay", APP, "--type", "return.created", "--dry-run")
    assert code == 0, err
    assert "would replay 1 event" in out and "the private Redis of `redo-hooks dev`" in err
    code, out, err = run("dead", APP, "list")
    assert (code, out.strip()) == (0, "no dead letters")
    assert redis_url in err


def test_an_explicit_redis_url_wins_over_dev_and_is_named(
    fresh_app: None, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    DevState("http://127.0.0.1:8000/", "s3cret", f"redis://127.0.0.1:{free_port()}/0").save(
        tmp_path / DATA_DIR
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    code, _, err = run("status", APP)
    assert code == 0, err
    assert f"Redis {redis_url} (REDO_HOOKS_REDIS_URL)" in err


def test_a_stopped_dev_redis_is_named_as_such_not_replaced_by_the_default(
    fresh_app: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # dev stopped: nothing listens there
    DevState("http://127.0.0.1:8000/", "s3cret", f"redis://127.0.0.1:{port}/0").save(
        tmp_path / DATA_DIR
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run("status", APP)
    assert code == 1
    assert f"127.0.0.1:{port}" in err and "redo-hooks dev` : is it running?" not in err
    assert "recorded by `redo-hooks dev`: is it running?" in err


def test_without_any_redis_setting_the_default_is_named_with_how_to_change_it(
    fresh_app: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, _, err = run("dead", APP, "list")
    assert "Redis redis://localhost:6379/0 (the default: set REDO_HOOKS_REDIS_URL" in err


# 2. One vocabulary of event names; unknown names and statuses refused.


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "created"],
        ["sample", "return.banana"],
        ["trigger", "updated", "--secret", "x"],
        ["replay", APP, "--type", "updated", "--dry-run"],
        ["replay", APP, "--type", "return.updated.", "--dry-run"],
    ],
)
def test_every_command_takes_the_same_event_names_and_lists_them_when_wrong(
    fresh_app: None, args: list[str], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `replay --type return.updated` said "would replay 0" and exited 0;
    `sample return.created` was refused while `trigger created` was too."""
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    code, out, err = run(*args)
    assert code == 2
    assert VALID_EVENTS in err and out == ""


@pytest.mark.parametrize("command", [["sample"], ["trigger", "--secret", "x"]])
def test_an_unknown_status_is_refused_with_the_valid_ones(command: list[str]) -> None:
    """Before: `trigger --status banana` was sent."""
    code, _, err = run(*command, "return.updated", "--status", "banana")
    assert code == 2
    assert "'banana' is not one of" in err and "'complete'" in err and "'in_transit'" in err


def test_replay_by_type_selects_the_events_of_that_name(
    fresh_app: None, redis_url: str, make_hooks: MakeHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = make_hooks()
    hooks.on("return", name="examples.shop.hooks.notify_warehouse")(lambda e: None)
    deliver(hooks, sample_event("return.created", return_id="r1"))
    deliver(hooks, sample_event("return.updated", return_id="r1"))
    deliver(hooks, sample_event("return.updated", return_id="r2"))
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    for name, count in [("return.updated", 2), ("return.created", 1), ("return.backfill", 0)]:
        code, out, err = run("replay", APP, "--type", name, "--dry-run", "--json")
        assert code == 0, err
        assert sum(orjson.loads(out)["queued"].values()) == count, name


# 3. URL and secret mistakes at the receiver.

MOUNTED = [("examples.mounted_starlette", "app"), ("examples.acme", "main")]


@pytest.mark.parametrize(("package", "module"), MOUNTED)
def test_a_mounted_receiver_takes_post_without_the_trailing_slash(
    package: str, module: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: POST /webhooks/redo got a 307 to /webhooks/redo/ (behind TLS: to http://)."""
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_SECRETS", SECRET)
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    example = importlib.import_module(f"{package}.{module}")
    body = sample_event("return.created")
    with TestClient(example.app, follow_redirects=False) as client:
        bare = client.post("/webhooks/redo", json=body, headers=AUTH)
        assert (bare.status_code, bare.json()["status"]) == (202, "accepted")
        again = client.post("/webhooks/redo/", json=body, headers=AUTH)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        assert client.post("/webhooks/redo", json=body).status_code == 401
        assert client.get("/webhooks/redo/healthz").status_code == 200
    stored = Redis.from_url(redis_url).zcard("rh:events")
    assert stored == 1


def test_wrong_paths_and_methods_are_logged_and_counted_with_a_reason(
    make_hooks: MakeHooks,
) -> None:
    """Before: a POST to a wrong path got a bare 404 that nothing logged or counted."""
    app = make_hooks().asgi()
    with capture_logs() as logs, TestClient(app) as client:
        wrong_path = client.post("/hooks", json={}, headers=AUTH)
        wrong_method = client.get("/")
        metrics = client.get("/metrics").text
    assert wrong_path.status_code == 404
    assert wrong_path.json()["type"].endswith(":not-found")
    assert "events are POSTed to /" in wrong_path.json()["detail"]
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    refused = [(e["status"], e["reason"]) for e in logs if e["event"] == "request_rejected"]
    assert refused == [(404, "not_found"), (405, "method_not_allowed")]
    assert 'redo_hooks_requests_total{outcome="rejected",reason="not_found"} 1.0' in metrics
    assert (
        'redo_hooks_requests_total{outcome="rejected",reason="method_not_allowed"} 1.0' in metrics
    )


def test_a_labelled_secret_sent_whole_gets_a_401_saying_to_send_the_secret_alone(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Before: `store-a=<secret>` as the bearer got the same bare 401 as a wrong secret."""
    hooks = make_hooks(secrets=[f"store-a={LONG_SECRET}"])
    body = sample_event("return.created")
    with TestClient(hooks.asgi()) as client:
        whole = client.post(
            "/", json=body, headers={"Authorization": "Bearer store-a=" + LONG_SECRET}
        )
        wrong = client.post(
            "/", json=body, headers={"Authorization": "Bearer store-a=not-the-secret"}
        )
    assert whole.status_code == 401
    assert "send only the secret after '='" in whole.json()["detail"]
    assert whole.json()["type"].endswith(":labelled-bearer")
    assert LONG_SECRET not in whole.text
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "unknown bearer secret")
    assert redis.dbsize() == 0  # nothing stored for either


# 4. Logging in an app that mounts the receiver.


def test_a_mounted_receiver_prints_no_debug_lines_and_logs_through_stdlib_logging(
    make_hooks: MakeHooks, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: with structlog unconfigured, every event printed a debug line on stdout."""
    hooks = make_hooks()
    hooks.on("return.created", name="noop")(lambda event: None)
    app = Starlette(routes=[Mount("/webhooks/redo", hooks.asgi())], lifespan=hooks.lifespan)
    caplog.set_level(logging.INFO, logger="redo_hooks")
    with TestClient(app) as client:
        assert client.post("/webhooks/redo/", json=sample_event(), headers=AUTH).status_code == 202
        assert client.post("/webhooks/redo/", json=sample_event()).status_code == 401
    out, err = capfd.readouterr()
    assert "event_accepted" not in out + err
    records = [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if r.name.startswith("redo_hooks")
    ]
    assert [(n, level) for n, level, _ in records] == [("redo_hooks.receiver.app", logging.WARNING)]
    assert records[0][2].startswith("request_rejected status=401 reason='missing_bearer'")
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="redo_hooks")
    with TestClient(app) as client:
        client.post("/webhooks/redo/", json=sample_event(), headers=AUTH)
    assert any(r.getMessage().startswith("event_accepted") for r in caplog.records)


def test_logs_configure_gives_a_mounted_app_the_clis_lines(
    make_hooks: MakeHooks, capfd: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO", json=True)
    hooks = make_hooks(log_successes=True)
    hooks.on("return.created", name="noop")(lambda event: None)
    app = Starlette(routes=[Mount("/webhooks/redo", hooks.asgi())], lifespan=hooks.lifespan)
    with TestClient(app) as client:
        client.post("/webhooks/redo/", json=sample_event(), headers=AUTH)
    lines = [orjson.loads(line) for line in capfd.readouterr().err.splitlines()]
    ours = [(x["event"], x["level"]) for x in lines if x["logger"].startswith("redo_hooks")]
    assert ours == [("event_accepted", "info")]


# 5. /metrics apart from the public webhook URL.


def test_serve_can_keep_metrics_off_the_public_port(redis_url: str) -> None:
    """Before: /metrics (and /openapi.json) could only live beside the webhook."""
    metrics_port = free_port()
    environ = env(redis_url, SECRET)
    process, url = start_server(
        "examples.shop.hooks:hooks", environ, None, "--metrics-port", str(metrics_port)
    )
    try:
        assert httpx.get(url + "/metrics", timeout=5).status_code == 404
        assert httpx.post(url + "/", content=sample_body(), headers=AUTH).status_code == 202

        def scraped() -> str | None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
            except httpx.TransportError:
                return None
            return answer.text if answer.status_code == 200 else None

        wait_for(lambda: scraped() is not None, 20, "the metrics port")
        text = scraped() or ""
        # The receiver's own counters, shared: the public 404 and the event.
        assert 'redo_hooks_requests_total{outcome="accepted",reason=""} 1.0' in text
        assert 'redo_hooks_requests_total{outcome="rejected",reason="not_found"} 1.0' in text
        assert "redo_hooks_redis_up 1.0" in text
    finally:
        # uvicorn re-raises SIGTERM once it has shut down gracefully.
        assert stop(process) in (0, -signal.SIGTERM)


def test_metrics_asgi_serves_the_receivers_counters_on_another_app(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks()
    hooks.on("return.created", name="noop")(lambda event: None)
    public = Starlette(
        routes=[Mount("/webhooks/redo", hooks.asgi(metrics=False))], lifespan=hooks.lifespan
    )
    internal = Starlette(routes=[Mount("/internal", hooks.metrics_asgi())])
    with TestClient(public) as client:
        assert client.get("/webhooks/redo/metrics").status_code == 404
        assert client.post("/webhooks/redo/", json=sample_event(), headers=AUTH).status_code == 202
    with TestClient(internal) as client:
        text = client.get("/internal/metrics").text
    assert 'redo_hooks_requests_total{outcome="accepted",reason=""} 1.0' in text


# 6. Installing and testing in one's own project.


BLOCKED = "import sys; sys.modules['jinja2'] = sys.modules['yaml'] = None\n"


def test_the_core_install_runs_without_the_optional_extras() -> None:
    code = BLOCKED + (
        "from redo_hooks import RedoHooks\n"
        "from redo_hooks.dispatch.worker import build\n"
        "hooks = RedoHooks(secrets=['s' * 32])\n"
        "hooks.asgi()\n"
        "try:\n"
        "    hooks.dashboard()\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert ran.stdout.strip() == (
        "MissingExtra the dashboard needs jinja2, which is not installed: "
        "pip install 'redo-hooks[dashboard]' (or add jinja2 to your requirements)"
    )


def test_check_spec_without_pyyaml_names_the_extra() -> None:
    code = (
        BLOCKED + "from redo_hooks.cli import main\nmain(['check-spec', 'spec/redo-openapi.yaml'])"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert ran.returncode == 2, ran.stderr
    assert "check-spec needs pyyaml, which is not installed" in ran.stderr
    assert "pip install 'redo-hooks[spec]'" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_one_http_client_family_at_run_time_and_in_tests() -> None:
    """Before: httpx at run time and httpx2 (Starlette's test client) in tests."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[]", dep)[0] for dep in project["dependencies"]]
    assert "httpx2" in names and "httpx" not in names
    assert project["optional-dependencies"]["testing"] == []  # kept, so installs still work
    used = {
        match
        for path in (ROOT / "redo_hooks").rglob("*.py")
        for match in re.findall(r"^\s*import (httpx\w*)", path.read_text(), re.MULTILINE)
    }
    assert used == {"httpx2"}


def test_mypy_in_a_users_project_finds_the_editable_install(tmp_path: Path) -> None:
    """Before: scripts/setup's editable install (setuptools' import hook) hid redo_hooks
    from mypy run in another project: 'Cannot find implementation or library stub'."""
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(USER_HOOKS)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-executable", sys.executable, "shop"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 2 source files" in result.stdout


USER_HOOKS = """
from redo_hooks import RedoHooks, ReturnEvent, ReturnStatus

hooks = RedoHooks()


@hooks.on("return.updated")
def refund(event: ReturnEvent) -> None:
    if event.return_.status == ReturnStatus.COMPLETE:
        print("refund", event.return_id)
"""


@pytest.mark.parametrize(
    ("setup", "shown"),
    [("configure DEBUG", True), ("configure INFO", False), ("own structlog", True)],
)
def test_the_per_event_debug_line_follows_whoever_configured_logging(
    make_hooks: MakeHooks, setup: str, shown: bool
) -> None:
    """The receiver skips its per-event DEBUG call when it would be filtered anyway
    (a cheap check), and never when someone else's structlog set-up decides."""
    hooks = make_hooks()
    hooks.on("return.created", name="noop")(lambda event: None)
    # capture_logs keeps the wrapper class configured before it (the level).
    if setup == "own structlog":
        structlog.configure(processors=[structlog.testing.LogCapture()])
    else:
        logs.configure(setup.split()[1], json=True)
    with capture_logs() as logs_seen, TestClient(hooks.asgi()) as client:
        client.post("/", json=sample_event(), headers=AUTH)
    assert any(e["event"] == "event_accepted" for e in logs_seen) is shown
