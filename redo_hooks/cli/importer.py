"""``"module:attribute"`` import strings, with errors that say what to fix."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigurationError


def import_from_string(spec: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted)."""
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise ConfigurationError(
            f"import string {spec!r} must be in the form 'module:attribute', "
            "e.g. 'shop.hooks:hooks'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise  # the module exists but one of its own imports failed
        raise ConfigurationError(
            f"could not import module {module_name!r} (is its folder on PYTHONPATH?)"
        ) from None
    value: Any = module
    for attr in attrs.split("."):
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attrs!r}") from None
    return value
