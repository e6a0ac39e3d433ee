"""The traps a new user and an operator fell into, each closed (issue #14).

Each test here failed before its fix; the docstring says what happened then.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from redo_hooks.cli import main
from redo_hooks.dev.redis_server import free_port
from redo_hooks.dev.runner import DATA_DIR, DevState
from redo_hooks.testing import deliver, sample_event

from .conftest import MakeHooks

APP = "examples.shop.hooks:hooks"
VALID_EVENTS = "return.created, return.updated, return.backfill"


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
    assert deliver(hooks, sample_event("return.created", subject="ret-dev"))
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
    deliver(hooks, sample_event("return.created", subject="r1"))
    deliver(hooks, sample_event("return.updated", subject="r1"))
    deliver(hooks, sample_event("return.updated", subject="r2"))
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    for name, count in [("return.updated", 2), ("return.created", 1), ("return.backfill", 0)]:
        code, out, err = run("replay", APP, "--type", name, "--dry-run", "--json")
        assert code == 0, err
        assert sum(orjson.loads(out)["queued"].values()) == count, name
