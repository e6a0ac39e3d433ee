"""The tolerant base model every Redo payload model derives from.

Redo's webhook body has changed in every way a strict reader would choke on
(``docs/design.md``, "Redo's schema over time"), and a rejected event is
lost for good after Redo's retries. So every model here follows four rules:

* unknown fields are kept (``extra="allow"``) and stay readable in ``.raw``;
* every field is optional and accepts ``null``, except what routing needs;
* every enum is *open*: known values become members of a ``StrEnum`` (usable as
  constants), unknown strings are kept as plain ``str``;
* money is ``Decimal``, parsed from the decimal string or from a number.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

E = TypeVar("E", bound=StrEnum)


class RedoModel(BaseModel):
    """Base for Redo payload models: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        coerce_numbers_to_str=True,
        # Decimals and datetimes compare and hash like values; models never change.
        frozen=True,
    )


def opener(enum_cls: type[E]) -> BeforeValidator:
    """A validator that turns known values into ``enum_cls`` members, keeping others."""

    def to_member(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return enum_cls(value)
            except ValueError:
                return value
        return value

    return BeforeValidator(to_member)


class Money(RedoModel):
    """An amount in a currency. ``amount`` was a number in old spec versions."""

    amount: Decimal | None = None
    currency: str | None = None


class TaxedMoney(Money):
    """Money with the tax included in it (exchange item prices)."""

    tax: Decimal | None = None
