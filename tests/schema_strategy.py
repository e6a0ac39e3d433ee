"""Hypothesis strategies that generate JSON from the spec's schemas.

Follows ``type`` (including 3.1 type lists), ``nullable`` (3.0), ``enum``,
``const``, ``oneOf``, ``$ref``, ``required``, ``format: date-time``. Strings
named ``amount``/``tax`` are decimal strings, as ``money.schema`` documents
(its examples are "50.2", "1.78"): arbitrary text there is not something
Redo sends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

JSON = Any


def from_schema(
    schema: dict[str, Any], components: dict[str, Any], name: str = ""
) -> st.SearchStrategy[JSON]:
    if "$ref" in schema:
        ref = components[schema["$ref"].split("/")[-1]]
        return from_schema({**ref, **{k: v for k, v in schema.items() if k != "$ref"}},
                           components, name)  # fmt: skip
    base = _base(schema, components, name)
    if schema.get("nullable"):
        return st.none() | base
    return base


def _base(  # noqa: PLR0911 - one return per JSON Schema type
    schema: dict[str, Any], components: dict[str, Any], name: str
) -> st.SearchStrategy[JSON]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema:
        return st.one_of([from_schema(s, components, name) for s in schema["oneOf"]])
    kinds = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kinds, list):
        return st.one_of([_base({**schema, "type": k}, components, name) for k in kinds])
    if kinds == "null":
        return st.none()
    if kinds == "boolean":
        return st.booleans()
    if kinds == "integer":
        return st.integers(min_value=-(2**53), max_value=2**53)
    if kinds == "number":
        return st.integers(min_value=0, max_value=10**6) | st.floats(
            min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False
        )
    if kinds == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)).map(
                lambda d: d.isoformat()
            )
        if name in ("amount", "tax"):
            return st.decimals(
                min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2,
                allow_nan=False, allow_infinity=False,
            ).map(str)  # fmt: skip
        return st.text(max_size=20)
    if kinds == "array":
        return st.lists(from_schema(schema.get("items", {}), components, name), max_size=3)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {k: from_schema(v, components, k) for k, v in properties.items() if k in required},
        optional={
            k: from_schema(v, components, k) for k, v in properties.items() if k not in required
        },
    )
