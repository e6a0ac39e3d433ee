"""The Django recipe (examples/django_shop): handlers using the ORM after django.setup()
in on_worker, and the receiver mounted in Django's ASGI app."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import django
import pytest
from django.core.management import call_command
from starlette.testclient import TestClient

from redo_hooks.testing import HookTester, sample_event

from .conftest import SECRET


@pytest.fixture
def recipe(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_SECRETS", SECRET)
    monkeypatch.setenv("SHOP_DATA", str(tmp_path))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")
    for name in list(sys.modules):
        if name.startswith("examples.django_shop"):
            monkeypatch.delitem(sys.modules, name)
    django.setup()
    call_command("migrate", verbosity=0)  # the recipe's migration, into tmp_path
    yield importlib.import_module("examples.django_shop.asgi")


def test_handlers_write_through_the_orm_and_the_receiver_lives_in_djangos_asgi_app(
    recipe: ModuleType,
) -> None:
    hooks = sys.modules["examples.django_shop.hooks"].hooks
    created = sample_event("return.created", return_id="ret-dj")
    updated = sample_event("return.updated", return_id="ret-dj", status="complete", seq=1)
    auth = {"Authorization": f"Bearer {SECRET}"}
    with TestClient(recipe.application) as client:
        for event in (created, updated):
            posted = client.post("/webhooks/redo/", json=event, headers=auth)
            assert posted.status_code == 202, posted.text
        assert client.get("/webhooks/redo/healthz").status_code == 200
        assert client.post("/webhooks/redo/", json=created).status_code == 401
        with HookTester(hooks) as tester:
            ran = tester.run()
        assert [r.outcome for r in ran] == ["ok", "ok"]
        # Django's own route reads what the handlers wrote.
        assert client.get("/returns/").json() == {"returns": [["ret-dj", "complete"]]}
