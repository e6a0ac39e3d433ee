"""`redo-hooks check-spec`: the models against Redo's spec, the vendored one and edited copies."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from redo_hooks.cli import main

from .spec import SPEC_PATH, spec


def check(path: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(main, ["check-spec", str(path), "--json", *args])
    return result.exit_code, [orjson.loads(line) for line in result.stdout.splitlines()]


def test_the_vendored_spec_and_the_models_agree() -> None:
    result = CliRunner().invoke(main, ["check-spec", str(SPEC_PATH)])
    assert result.exit_code == 0, result.output
    assert "the models and the spec agree" in result.stdout


def schemas(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"]
    return found


def add_field(d: dict[str, Any]) -> None:
    schemas(d)["return-read.schema"]["properties"]["loyaltyTier"] = {"type": "string"}


def add_nested_field(d: dict[str, Any]) -> None:
    item = schemas(d)["return-read.schema"]["properties"]["items"]["items"]
    item["properties"]["warranty"] = {
        "type": "object",
        "properties": {"months": {"type": "integer"}},
    }


def remove_field(d: dict[str, Any]) -> None:
    del schemas(d)["return-read.schema"]["properties"]["createdAt"]


def retype_field(d: dict[str, Any]) -> None:
    schemas(d)["return-read.schema"]["properties"]["createdAt"] = {"type": "object"}


def add_enum_value(d: dict[str, Any]) -> None:
    schemas(d)["return-status.schema"]["enum"].append("teleported")


def remove_enum_value(d: dict[str, Any]) -> None:
    schemas(d)["return-status.schema"]["enum"].remove("complete")


@pytest.mark.parametrize(
    ("edit", "expected", "code"),
    [
        (add_field, [("new field", "return.loyaltyTier")], 0),
        # A new object is one finding, not one per field inside it.
        (add_nested_field, [("new field", "return.items[].warranty")], 0),
        (remove_field, [("removed field", "return.createdAt")], 1),
        (retype_field, [("retyped field", "return.createdAt")], 1),
        (add_enum_value, [("new enum value", "return.status")], 1),
        (remove_enum_value, [("removed enum value", "return.status")], 1),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_each_kind_of_change_is_reported_with_the_right_exit_code(
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    expected: list[tuple[str, str]],
    code: int,
) -> None:
    document = copy.deepcopy(spec())
    edit(document)
    path = tmp_path / "newer.yaml"
    path.write_text(yaml.safe_dump(document))
    exit_code, findings = check(path)
    assert [(f["kind"], f["path"]) for f in findings] == expected
    assert exit_code == code
    assert all(f["changes_handlers"] == (f["kind"] != "new field") for f in findings)


def test_enum_findings_name_the_value(tmp_path: Path) -> None:
    document = copy.deepcopy(spec())
    add_enum_value(document)
    remove_enum_value(document)
    path = tmp_path / "newer.json"
    path.write_bytes(orjson.dumps(document))  # JSON is read too
    _, findings = check(path)
    assert {(f["kind"], f["detail"]) for f in findings} == {
        ("new enum value", "teleported"),
        ("removed enum value", "complete"),
    }


def test_a_file_that_is_not_a_redo_spec_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("openapi: 3.1.0\npaths: {}\n")
    result = CliRunner().invoke(main, ["check-spec", str(path)])
    assert result.exit_code == 2
    assert "no webhooks.return.post.requestBody" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("webhooks: [unclosed\n")
    result = CliRunner().invoke(main, ["check-spec", str(broken)])
    assert result.exit_code == 2 and "cannot read" in result.output
