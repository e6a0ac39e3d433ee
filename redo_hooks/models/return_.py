"""``return-read.schema`` and the schemas only it uses.

Shipments (``return-shipment.schema``), dropoffs (``return-dropoff.schema``),
items, exchange, totals and protection. Field names follow the spec in
snake_case; the wire names are their camelCase aliases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec

from .base import EnumFields, Money, RedoModel, TaxedMoney, open_members
from .common import Address, PersonName, Product, ProductVariant, Quantity
from .enums import (
    CompensationMethod,
    ExchangeProvision,
    ExternalProvider,
    LabelPayer,
    LabelPayerReason,
    ReturnStatus,
    ReturnType,
    ShipmentStatus,
)


class ReturnShipment(RedoModel, frozen=True):
    """``return-shipment.schema``."""

    carrier: str | None = None
    status: str | None = None  # ShipmentStatus
    tracker: str | None = None
    tracking_url: str | None = None
    postage_label: str | None = None
    form_label: str | None = None
    shipment_group_id: str | None = None
    item_ids: list[str] | None = None
    external_location_id: str | None = None
    # Typed as plain strings in the spec (no ``format``), so kept as such.
    estimated_delivery_date: str | None = None
    delivered_at: str | None = None

    #: Open enums: a known value becomes its member (see ``open_members``).
    _enums: ClassVar[EnumFields] = {"status": ShipmentStatus}

    def __post_init__(self) -> None:
        open_members(self)


class ReturnDropoff(RedoModel, frozen=True):
    """``return-dropoff.schema``."""

    shipment_group_id: str | None = None
    provider: str | None = None
    qr_code: str | None = None
    qr_code_url: str | None = None


class ExternalReturnId(RedoModel, frozen=True):
    """``externalReturnIds[]``."""

    provider: str | None = None  # ExternalProvider
    value: str | None = None

    #: Open enums: a known value becomes its member (see ``open_members``).
    _enums: ClassVar[EnumFields] = {"provider": ExternalProvider}

    def __post_init__(self) -> None:
        open_members(self)


class Contact(RedoModel, frozen=True):
    """``source`` of a return: who sends the items back."""

    email_address: str | None = None
    name: PersonName | None = None
    mailing_address: Address | None = None
    phone_number: str | None = None


class Destination(RedoModel, frozen=True):
    """``destination`` of a return: where the items go (no name or email in the spec)."""

    mailing_address: Address | None = None
    phone_number: str | None = None


class OrderItemRef(RedoModel, frozen=True):
    """``items[].orderItem``: a reference to the order's line item."""

    id: str | None = None
    # The only snake_case name on the wire.
    line_item_id: str | None = msgspec.field(default=None, name="line_item_id")


class ExchangeVariant(RedoModel, frozen=True):
    """``items[].exchangeItem.variant``: its id and name (no sku or weight in the spec)."""

    external_id: str | None = None
    name: str | None = None


class ExchangeItemRef(RedoModel, frozen=True):
    """``items[].exchangeItem``."""

    product: Product | None = None
    variant: ExchangeVariant | None = None
    quantity: Quantity | None = None


class AmountHolder(RedoModel, frozen=True):
    """An object whose only documented field is ``amount: money``."""

    amount: Money | None = None


class Refund(AmountHolder, frozen=True):
    """``items[].refund``."""

    type: str | None = None


class QuestionAnswer(RedoModel, frozen=True):
    """``items[].multipleChoiceQuestions[]``."""

    question: str | None = None
    answer: str | None = None


class AssessmentUser(RedoModel, frozen=True):
    """``items[].assessments[].assignedUser``."""

    id: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


class AssessmentResponse(RedoModel, frozen=True):
    """One of the ``oneOf`` response kinds, keyed by ``type``; ``value`` as sent."""

    type: str | None = None
    value: Any = None


class Assessment(RedoModel, frozen=True):
    """``items[].assessments[]`` (warranties only)."""

    assigned_user: AssessmentUser | None = None
    responses: list[AssessmentResponse] | None = None


class ReturnItem(RedoModel, frozen=True):
    """``items[]`` of a return."""

    id: str | None = None
    order_item: OrderItemRef | None = None
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    upc: str | None = None
    quantity: Quantity | None = None
    status: str | None = None
    grade: str | None = None
    outcome: str | None = None
    green_return: bool | None = None
    reason: str | None = None
    reason_code: str | None = None
    reasons: list[str] | None = None
    reason_codes: list[str] | None = None
    customer_comment: str | None = None
    multiple_choice_questions: list[QuestionAnswer] | None = None
    shipment_group_ids: list[str] | None = None
    external_return_line_item_id: str | None = None
    exchange_item: ExchangeItemRef | None = None
    refund: Refund | None = None
    product_value_no_tax_no_adjustment: AmountHolder | None = None
    product_adjustment: str | None = None
    assessments: list[Assessment] | None = None


class ExchangeItem(RedoModel, frozen=True):
    """``exchange.items[]``."""

    id: str | None = None
    original_price: Money | None = None
    price: TaxedMoney | None = None
    product: Product | None = None
    variant: ProductVariant | None = None
    quantity: Quantity | None = None


class ExchangeOrderRef(RedoModel, frozen=True):
    """``exchange.order``."""

    external_id: str | None = None


class Exchange(RedoModel, frozen=True):
    """``exchange``: the exchange order of a return."""

    item_count: int | None = None
    items: list[ExchangeItem] | None = None
    order: ExchangeOrderRef | None = None
    provision: str | None = None  # ExchangeProvision
    total_tax: Money | None = None

    #: Open enums: a known value becomes its member (see ``open_members``).
    _enums: ClassVar[EnumFields] = {"provision": ExchangeProvision}

    def __post_init__(self) -> None:
        open_members(self)


class GiftCard(RedoModel, frozen=True):
    """``giftCards[]``."""

    amount: Money | None = None
    code: str | None = None
    external_id: str | None = None


class Note(RedoModel, frozen=True):
    """``notes[]``."""

    message: str | None = None
    image: str | None = None


class Tag(RedoModel, frozen=True):
    """``tags[]``."""

    name: str | None = None
    source: str | None = None


class ReturnOrderRef(RedoModel, frozen=True):
    """``order`` inside the return: a reference to the original order."""

    id: str | None = None
    name: str | None = None


class ReturnProtection(RedoModel, frozen=True):
    """``protection`` of a return."""

    covered: bool | None = None
    returns_coverage: bool | None = None
    package_protection: bool | None = None
    final_sale_coverage: bool | None = None
    label_payer: str | None = None  # LabelPayer
    label_payer_reason: str | None = None  # LabelPayerReason

    #: Open enums: a known value becomes its member (see ``open_members``).
    _enums: ClassVar[EnumFields] = {
        "label_payer": LabelPayer,
        "label_payer_reason": LabelPayerReason,
    }

    def __post_init__(self) -> None:
        open_members(self)


class Totals(RedoModel, frozen=True):
    """``totals`` of a return."""

    refund: AmountHolder | None = None
    exchange: AmountHolder | None = None
    store_credit: AmountHolder | None = None
    charge: AmountHolder | None = None
    shipping_fee: AmountHolder | None = None


class Return(RedoModel, frozen=True):
    """``return-read.schema``. Only ``id`` is required: it is the routing subject."""

    id: str
    type: str | None = None  # ReturnType
    status: str | None = None  # ReturnStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None
    order: ReturnOrderRef | None = None
    external_order_ids: list[str] | None = None
    external_return_ids: list[ExternalReturnId] | None = None
    shopify_order_ids: list[str] | None = None
    compensation_methods: list[str] | None = None  # CompensationMethod
    complete_with_no_action: bool | None = None
    internal_created_by_name: str | None = None
    items: list[ReturnItem] | None = None
    source: Contact | None = None
    destination: Destination | None = None
    shipment: ReturnShipment | None = None
    shipments: list[ReturnShipment] | None = None
    dropoffs: list[ReturnDropoff] | None = None
    gift_cards: list[GiftCard] | None = None
    exchange: Exchange | None = None
    totals: Totals | None = None
    tags: list[Tag] | None = None
    notes: list[Note] | None = None
    protection: ReturnProtection | None = None

    #: Open enums: a known value becomes its member (see ``open_members``).
    _enums: ClassVar[EnumFields] = {
        "type": ReturnType,
        "status": ReturnStatus,
        "compensation_methods": CompensationMethod,
    }

    def __post_init__(self) -> None:
        open_members(self)
