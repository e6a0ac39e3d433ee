"""The vendored Redo spec, loaded once for tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

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
