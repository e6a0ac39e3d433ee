"""Small shared schemas: person name, address, product, variant, weight."""

from __future__ import annotations

from decimal import Decimal

from .base import RedoModel


class PersonName(RedoModel, frozen=True):
    """``person-name.schema``."""

    given: str | None = None
    surname: str | None = None


class Address(RedoModel, frozen=True):
    """``address.schema``."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Weight(RedoModel, frozen=True):
    """``weight.schema``."""

    kg: Decimal | None = None


class Product(RedoModel, frozen=True):
    """``product.schema``."""

    external_id: str | None = None
    name: str | None = None


class ProductVariant(RedoModel, frozen=True):
    """``product-variant.schema``."""

    external_id: str | None = None
    name: str | None = None
    sku: str | None = None
    weight: Weight | None = None


# ``item-quantity.schema`` is a JSON number; whole numbers stay ints.
Quantity = int | Decimal
