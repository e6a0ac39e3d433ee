"""The vendored Redo spec, loaded once for tests."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "redo-openapi.yaml"


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def webhook_body() -> dict[str, Any]:
    """``webhooks.return.post.requestBody.content.application/json``."""
    content: dict[str, Any] = spec()["webhooks"]["return"]["post"]["requestBody"]["content"]
    return dict(content["application/json"])


def components() -> dict[str, Any]:
    schemas: dict[str, Any] = spec()["components"]["schemas"]
    return schemas


# ``webhook-read.required`` runs two names together; we validate against the
# schema Redo evidently meant. tests/test_redo_api.py checks the defect is
# still there, so this patch is removed when Redo fixes it.
SPEC_DEFECT = "externalId id"


@cache
def _registry() -> Any:
    patched = copy.deepcopy(spec())
    read = patched["components"]["schemas"]["webhook-read.schema"]
    read["required"] = [name for name in read["required"] if name != SPEC_DEFECT] + ["id"]
    resource = Resource.from_contents(patched, default_specification=DRAFT202012)
    return Registry().with_resource("urn:redo-spec", resource)


def validate(instance: Any, pointer: str) -> None:
    """Validate ``instance`` against the spec schema at JSON ``pointer`` (raises)."""
    schema = {"$ref": f"urn:redo-spec#{pointer}"}
    validator = Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(instance)


def response_schema(path: str, method: str, status: str) -> str:
    """JSON pointer of a path operation's ``application/json`` response schema."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
