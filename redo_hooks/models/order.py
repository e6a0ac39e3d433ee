"""``order-read.schema``: the order a return belongs to."""

from __future__ import annotations

from .base import Money, RedoModel
from .common import PersonName, Product, ProductVariant, Quantity


class Customer(RedoModel, frozen=True):
    """``order-read.schema`` ``customer``."""

    email_address: str | None = None
    name: PersonName | None = None
    phone_number: str | None = None


class OrderLineItem(RedoModel, frozen=True):
    """``order-read.schema`` ``items[]``."""

    id: str | None = None
    external_id: str | None = None
    fulfillment_location_id: str | None = None
    product: Product | None = None
    variant: ProductVariant | None = None
    quantity: Quantity | None = None
    price: Money | None = None


class OrderProtection(RedoModel, frozen=True):
    """``order-read.schema`` ``protection``."""

    covered: bool | None = None
    returns_coverage: bool | None = None
    package_protection: bool | None = None
    final_sale_coverage: bool | None = None


class Order(RedoModel, frozen=True):
    """``order-read.schema``."""

    id: str | None = None
    external_id: str | None = None
    name: str | None = None
    customer: Customer | None = None
    items: list[OrderLineItem] | None = None
    discounts: Money | None = None
    line_items_total: Money | None = None
    shipping_cost: Money | None = None
    taxes: Money | None = None
    total: Money | None = None
    protection: OrderProtection | None = None
