"""The Flask recipe (examples/flask_shop): handlers in the Flask app's context."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from redo_hooks.testing import HookTester, sample_event

from .conftest import SECRET


@pytest.fixture
def recipe(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.setenv("REDO_HOOKS_SECRETS", SECRET)
    monkeypatch.chdir(tmp_path)  # the worker's database file lands here
    for name in list(sys.modules):
        if name.startswith("examples.flask_shop"):
            monkeypatch.delitem(sys.modules, name)
    yield importlib.import_module("examples.flask_shop.hooks")


def test_a_handler_uses_the_flask_apps_config_and_database(
    recipe: ModuleType, tmp_path: Path
) -> None:
    with HookTester(recipe.hooks) as tester:
        for n in range(2):
            assert (
                tester.post(sample_event("return.created", return_id=f"ret-{n}")).status_code == 202
            )
        ran = tester.run()
    assert [r.outcome for r in ran] == ["ok", "ok"]
    app_module = sys.modules["examples.flask_shop.app"]
    flask = app_module.create_app(DATABASE=str(tmp_path / "shop.sqlite3"))
    # What the handlers wrote, read back through the Flask app's own route.
    # (two returns: two lanes, run in either order)
    assert sorted(flask.test_client().get("/restocks").json["restocks"]) == ["ret-0", "ret-1"]
