"""What a body says that the models do not know: the schema-drift findings. Pure.

Redo's schema moves (``docs/design.md``). The tolerant models keep accepting
a body with new fields or new enum values — which is why nobody notices: a
new field is only in ``event.raw``, and a renamed status is a plain string a
handler keyed on ``ReturnStatus.COMPLETE`` silently stops matching. This
module compares a parsed body with the models and names each difference:

* ``("field", "return.items[].newField", "")`` — a field the models lack;
* ``("enum", "return.status", "teleported")`` — a value an open enum lacks;
* ``("type", "return.totals.refund.amount", "Expected `object | null`, got `int`")``
  — a value of another type than the field's (read as ``None``, listed in
  ``event.schema_errors``: :func:`type_findings`).

List elements share one path (``[]``). Free-form values (``dict[str, Any]``)
are not walked. At most ``limit`` findings per body: a body of thousands of
unknown paths costs a bounded walk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import msgspec

from .event import ReturnEvent

#: (kind, path, value): kind ``"field"`` (value ``""``) or ``"enum"``.
Finding = tuple[str, str, str]

#: Findings reported for one body, at most.
LIMIT = 50


def drift(raw: Any, *, limit: int = LIMIT) -> list[Finding]:
    """The unknown fields and enum values of the body ``raw`` (parsed JSON), in order."""
    found: list[Finding] = []
    if isinstance(raw, dict):
        _walk_struct(_shape(ReturnEvent), raw, "", found, limit)
    return found


class _Shape:
    """One model's fields by wire name: their name, type, and enum (if open)."""

    __slots__ = ("fields",)

    def __init__(self, model: type, info: msgspec.inspect.StructType) -> None:
        enums = getattr(model, "_enums", {})
        self.fields: dict[str, tuple[msgspec.inspect.Type, dict[str, Any] | None]] = {
            f.encode_name: (f.type, _members(enums.get(f.name))) for f in info.fields
        }


def _members(enum: Any) -> dict[str, Any] | None:
    return None if enum is None else enum._value2member_map_


@cache
def _shape(model: type) -> _Shape:
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    return _Shape(model, info)


def _walk_struct(
    shape: _Shape, value: dict[str, Any], path: str, found: list[Finding], limit: int
) -> None:
    for name, item in value.items():
        if len(found) >= limit:
            return
        here = f"{path}.{name}" if path else name
        known = shape.fields.get(name)
        if known is None:
            found.append(("field", here, ""))
            continue
        kind, members = known
        if members is not None:
            _check_enum(members, item, here, found)
            continue
        _walk(kind, item, here, found, limit)


def _check_enum(members: dict[str, Any], value: Any, path: str, found: list[Finding]) -> None:
    values = value if isinstance(value, list) else [value]
    for one in values:
        if isinstance(one, str) and one not in members:
            found.append(("enum", path, one))


def _walk(
    kind: msgspec.inspect.Type, value: Any, path: str, found: list[Finding], limit: int
) -> None:
    if isinstance(kind, msgspec.inspect.UnionType):
        for option in kind.types:
            if _fits(option, value):
                _walk(option, value, path, found, limit)
                return
    elif isinstance(kind, msgspec.inspect.StructType) and isinstance(value, dict):
        _walk_struct(_shape(kind.cls), value, path, found, limit)
    elif isinstance(kind, msgspec.inspect.ListType) and isinstance(value, list):
        for item in value:
            if len(found) >= limit:
                return
            _walk(kind.item_type, item, f"{path}[]", found, limit)


def _fits(kind: msgspec.inspect.Type, value: Any) -> bool:
    if isinstance(kind, msgspec.inspect.StructType):
        return isinstance(value, dict)
    if isinstance(kind, msgspec.inspect.ListType):
        return isinstance(value, list)
    return False


_INDEX = re.compile(r"\[\d+\]")


def type_findings(schema_errors: Iterable[str]) -> list[Finding]:
    """``event.schema_errors`` as findings: ``("type", path, what was expected)``."""
    found: list[Finding] = []
    for error in schema_errors:
        path, _, message = error.partition(": ")
        found.append(("type", _INDEX.sub("[]", path), message))
    return found
