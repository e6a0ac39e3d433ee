"""The tolerant base every Redo payload model derives from.

Redo's webhook body has changed in every way a strict reader would choke on
(``docs/design.md``, "Redo's schema over time"), and a rejected event is
lost for good after Redo's retries. So every model here follows these rules:

* unknown fields are ignored by the model and stay readable in ``event.raw``;
* every field is optional and accepts ``null``, except what routing needs;
* every enum is *open*: known values become members of a ``StrEnum`` (usable as
  constants), unknown strings are kept as plain ``str``;
* money is ``Decimal``, parsed from the decimal string or from a number;
* a value that does not fit its field reads as ``None`` and is listed in
  ``event.schema_errors`` (:mod:`redo_hooks.models.tolerance`), rather than
  failing the whole event.

The models are ``msgspec`` structs, decoded straight from the body's bytes:
faster than the equivalent pydantic models (``benchmarks/models.py``
measures by how much; the figures are in ``benchmarks/README.md``), which
matters because every event is decoded once at the receiver and once per
handler run. They are frozen, compare and hash by value, and print like
dataclasses; ``event.to_dict()``, ``msgspec.structs.asdict`` or
``msgspec.to_builtins`` turn one into plain data.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec


class RedoModel(msgspec.Struct, frozen=True, kw_only=True, rename="camel", gc=False):
    """Base for Redo payload models: camelCase on the wire, snake_case in Python.

    ``gc=False``: the models form trees (no reference cycles), so the garbage
    collector need not track the dozens of objects each event is made of.
    """


#: ``_enums`` of a model: its open-enum fields and their ``StrEnum``.
EnumFields = dict[str, type[StrEnum]]


def open_members(model: RedoModel) -> None:
    """In ``__post_init__``: turn known values of the model's ``_enums`` into members.

    ``_enums`` (a class variable, ``{field: StrEnum}``) is the one place a
    model says which of its fields are open enums; the schema-drift report
    reads it too, to tell a new value from a known one.
    """
    # Inlined (no call per field): every model of every event runs this.
    for field, enum in model._enums.items():  # type: ignore[attr-defined]
        value = getattr(model, field)
        if type(value) is str:
            member = enum._value2member_map_.get(value)
            if member is not None:
                _force_setattr(model, field, member)
        elif type(value) is list:
            known = enum._value2member_map_
            _force_setattr(model, field, [known.get(v, v) for v in value])


_force_setattr = msgspec.structs.force_setattr


class Money(RedoModel, frozen=True):
    """An amount in a currency. ``amount`` was a number in old spec versions."""

    amount: Decimal | None = None
    currency: str | None = None


class TaxedMoney(Money, frozen=True):
    """Money with the tax included in it (exchange item prices)."""

    tax: Decimal | None = None
