"""The `redo-hooks` command: import strings, refusals, routes, sample."""

from __future__ import annotations

import sys

import orjson
import pytest
from click.testing import CliRunner

from redo_hooks.cli import main
from redo_hooks.cli.common import import_from_string
from redo_hooks.dev.redis_server import free_port
from redo_hooks.errors import ConfigurationError
from redo_hooks.receiver.body import parse_body


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("examples.shop.hooks", "<module>:<attribute>.* e.g. 'shop.hooks:hooks'"),
        ("examples.shop.nothere:hooks", 'import module "examples.shop.nothere".*PYTHONPATH'),
        ("examples.shop.hooks:nothere", 'Attribute "nothere" not found'),
    ],
)
def test_bad_import_strings_say_what_to_fix(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        import_from_string(spec)


def test_routes_prints_the_routing_table_with_every_option() -> None:
    """Before: a Python repr without latest_only, retries or park."""
    result = CliRunner().invoke(main, ["routes", "tests.routes_app:hooks"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == [
        "events",
        "return.created, return.backfill",
        "return.updated",
    ]
    columns = [[c for c in line.split("  ") if c] for line in lines]
    assert [c.strip() for c in columns[0]] == [
        *("events", "handler", "kind", "retries", "backoff", "latest_only", "park"),
        *("strict", "timeout", "max_concurrency", "rate_limit"),
    ]
    assert [c.strip() for c in columns[1]][1:] == [
        *("ship", "sync", "4", "1.5 s", "no", "no", "no", "-", "-", "-"),
    ]
    assert [c.strip() for c in columns[2]][1:] == [
        *("refund", "async", "9", "1.5 s", "yes", "yes", "yes", "2.5 s", "5", "120/m"),
    ]
    # Aligned: each column starts at the same place on every line.
    assert len({line.index("ship") for line in lines[1:2]} | {lines[2].index("refund")}) == 1


def test_an_app_string_that_is_not_a_redohooks_object_is_refused() -> None:
    result = CliRunner().invoke(main, ["worker", "examples.shop.hooks:log"])
    assert result.exit_code == 2
    assert "not a RedoHooks object" in result.output


def test_serve_without_a_secret_exits_2_and_says_how_to_set_one() -> None:
    result = CliRunner().invoke(main, ["serve", "examples.shop.hooks:hooks", "--port", "1"])
    assert result.exit_code == 2
    assert "REDO_HOOKS_SECRETS" in result.output


def test_an_unknown_setting_in_the_environment_stops_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDO_HOOKS_SECRETZ", "oops")
    monkeypatch.delitem(sys.modules, "tests.fresh_app", raising=False)  # import it afresh
    result = CliRunner().invoke(main, ["routes", "tests.fresh_app:hooks"])
    assert result.exit_code != 0
    assert "REDO_HOOKS_SECRETZ" in str(result.exception) + result.output


def test_sample_prints_a_valid_event_for_the_given_return() -> None:
    result = CliRunner().invoke(
        main, ["sample", "return.updated", "--return", "ret-9", "--status", "complete"]
    )
    assert result.exit_code == 0
    incoming = parse_body(result.output.strip().encode())
    assert (incoming.type, incoming.subject) == ("updated", "ret-9")
    assert orjson.loads(result.output)["return"]["status"] == "complete"


@pytest.mark.parametrize(
    "command",
    [["status"], ["dead", "{app}", "list"], ["replay", "{app}", "--dry-run"]],
)
def test_unreachable_redis_is_one_line_naming_the_masked_url(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", f"redis://:hunter2secret@127.0.0.1:{port}/0")
    monkeypatch.delitem(sys.modules, "examples.shop.hooks", raising=False)  # read it afresh
    app = "examples.shop.hooks:hooks"
    args = [a.format(app=app) for a in command] + ([app] if command == ["status"] else [])
    result = CliRunner().invoke(main, ["--log-level", "ERROR", *args])
    assert result.exit_code == 1
    # Which Redis it talks to, then that it did not answer: one line each.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.output
    assert lines[0] == f"redo-hooks: Redis redis://:***@127.0.0.1:{port}/0 (REDO_HOOKS_REDIS_URL)"
    assert f"127.0.0.1:{port}" in lines[1] and "did not answer" in lines[1]
    assert "hunter2secret" not in result.output
