"""The receiver mounted in a Starlette app and in a FastAPI app whose package holds the handlers."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from redo_hooks import ConfigurationError
from redo_hooks.cli import main
from redo_hooks.testing import drain, sample_event, wait_for

from .conftest import SECRET, MakeHooks
from .processes import env, start_workers, stop

AUTH = {"Authorization": f"Bearer {SECRET}"}


Loader = Callable[[str, str], ModuleType]


@pytest.fixture
def load(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Loader:
    """Import an example afresh, configured from the environment as in production."""
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_SECRETS", SECRET)
    monkeypatch.setenv("REDO_HOOKS_BACKOFF", "0")

    def load(package: str, module: str) -> ModuleType:
        for name in list(sys.modules):
            if name == package or name.startswith(package + "."):
                monkeypatch.delitem(sys.modules, name)
        return importlib.import_module(f"{package}.{module}")

    return load


def test_mounted_in_starlette(load: Loader) -> None:
    example = load("examples.mounted_starlette", "app")
    body = sample_event("return.created")
    with TestClient(example.app) as client:
        assert client.get("/").json() == {"app": "shop"}
        assert client.get("/webhooks/redo/healthz").status_code == 200
        assert client.get("/webhooks/redo/readyz").status_code == 200
        response = client.post("/webhooks/redo/", json=body, headers=AUTH)
        assert response.status_code == 202, response.text
        assert client.post("/webhooks/redo/", json=body).status_code == 401
        assert example.app.state.started  # the app's own lifespan ran around the receiver's
    drain(example.hooks)
    assert example.restocked == [body["return"]["id"]]


def test_hooks_mount_takes_the_bare_path_without_any_lifespan(make_hooks: MakeHooks) -> None:
    """Before: without lifespan=hooks.lifespan, POST /webhooks/redo got a silent 307."""
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="noop")
    mounted = hooks.mount("/webhooks/redo")
    app = Starlette(routes=[mounted])  # no lifespan at all
    with TestClient(app, follow_redirects=False) as client:
        bare = client.post("/webhooks/redo", json=sample_event(), headers=AUTH)
        slashed = client.post("/webhooks/redo/", json=sample_event(), headers=AUTH)
        health = client.get("/webhooks/redo/healthz")
        elsewhere = client.post("/webhooks/redox", json=sample_event(), headers=AUTH)
        # What hooks.lifespan would do on shutdown: close the receiver's Redis.
        receiver = mounted.app.state.receiver  # type: ignore[attr-defined]
        assert client.portal is not None
        client.portal.call(receiver.close)
    assert (bare.status_code, slashed.status_code, health.status_code) == (202, 202, 200)
    assert elsewhere.status_code == 404
    plain = Starlette(routes=[Mount("/webhooks/redo", app=hooks.asgi())])
    with TestClient(plain, follow_redirects=False) as client:  # what hooks.mount fixes
        assert client.post("/webhooks/redo", json=sample_event(), headers=AUTH).status_code == 307


def test_mounted_in_fastapi_with_handlers_in_the_apps_package(load: Loader) -> None:
    main_module = load("examples.acme", "main")
    webhooks = sys.modules["examples.acme.webhooks"]
    ledger = sys.modules["examples.acme.orders"].ledger
    created = sample_event("return.created")
    return_id = created["return"]["id"]
    completed = sample_event("return.updated", return_id=return_id, status="complete")
    refund = Decimal(completed["return"]["totals"]["refund"]["amount"]["amount"])
    with TestClient(main_module.app) as client:
        assert client.get(f"/refunds/{return_id}").status_code == 404
        assert client.post("/webhooks/redo/", json=created, headers=AUTH).status_code == 202
        drain(webhooks.hooks)
        assert return_id in ledger.awaiting
        assert client.post("/webhooks/redo/", json=completed, headers=AUTH).status_code == 202
        drain(webhooks.hooks)
        assert client.get(f"/refunds/{return_id}").json() == {
            "return": return_id,
            "refund": str(refund),
        }
        metrics = client.get("/webhooks/redo/metrics").text
        assert 'redo_hooks_requests_total{outcome="accepted",reason=""} 2.0' in metrics
        # FastAPI's own docs still work beside the mount.
        assert client.get("/openapi.json").json()["info"]["title"] == "acme"
    assert return_id not in ledger.awaiting


def test_the_workers_find_handlers_in_the_apps_package(load: Loader) -> None:
    load("examples.acme", "webhooks")
    result = CliRunner().invoke(main, ["routes", "examples.acme.webhooks:hooks"])
    assert result.exit_code == 0, result.output
    assert "examples.acme.webhooks.expect_items" in result.output
    assert "examples.acme.webhooks.record_refund" in result.output


def test_the_parent_apps_lifespan_refuses_to_start_without_a_secret(
    load: Loader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDO_HOOKS_SECRETS")
    example = load("examples.mounted_starlette", "app")
    with pytest.raises(ConfigurationError, match="REDO_HOOKS_SECRETS"), TestClient(example.app):
        pass


def test_mounted_app_and_a_real_worker_process_as_in_production(
    load: Loader, redis_url: str
) -> None:
    """The docstring's two commands: the app serves the mount, `redo-hooks worker` runs handlers."""
    example = load("examples.mounted_starlette", "app")
    body = sample_event("return.created")
    workers = start_workers("examples.mounted_starlette.app:hooks", env(redis_url, SECRET))
    handler = "examples.mounted_starlette.app.reserve_restock"
    ran = f'redo_hooks_handler_runs_total{{handler="{handler}",outcome="ok"}} 1.0'
    try:
        with TestClient(example.app) as client:
            response = client.post("/webhooks/redo/", json=body, headers=AUTH)
            assert response.status_code == 202, response.text

            def handled() -> bool:
                return ran in client.get("/webhooks/redo/metrics").text

            wait_for(handled, 30, "the worker process to run the handler")
            waiting = client.get("/webhooks/redo/metrics").text
            assert "redo_hooks_events_waiting 0.0" in waiting
    finally:
        assert stop(workers) == 0
    assert example.restocked == []  # it ran in the worker process, not here
