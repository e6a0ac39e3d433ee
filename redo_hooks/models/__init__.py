"""Typed, tolerant models of Redo's return webhook (``spec/redo-openapi.yaml``).

Hand-written from the ``webhooks: return:`` body and the 15 component schemas
it references; the tolerance rules are in :mod:`redo_hooks.models.base` and
:mod:`redo_hooks.models.tolerance`. Pure: no I/O. Public: what ``__all__``
lists is part of redo-hooks' API.

May import ``errors`` only.
"""

from typing import Any

from ..errors import deprecated
from .base import Money, RedoModel, TaxedMoney
from .common import Address, PersonName, Product, ProductVariant, Weight
from .enums import (
    EVENT_NAMES,
    CompensationMethod,
    EventKind,
    ExchangeProvision,
    ExternalProvider,
    LabelPayer,
    LabelPayerReason,
    ReturnStatus,
    ReturnType,
    ShipmentStatus,
    event_kind,
)
from .event import ReturnEvent, decode_event, decode_fitting
from .jsontext import parse_json
from .order import Customer, Order, OrderLineItem, OrderProtection
from .return_ import (
    Contact,
    Destination,
    Exchange,
    ExchangeItem,
    GiftCard,
    Return,
    ReturnDropoff,
    ReturnItem,
    ReturnProtection,
    ReturnShipment,
    Totals,
)
from .tolerance import UnroutableEvent

__all__ = [
    "EVENT_NAMES",
    "Address",
    "CompensationMethod",
    "Contact",
    "Customer",
    "Destination",
    "EventKind",
    "Exchange",
    "ExchangeItem",
    "ExchangeProvision",
    "ExternalProvider",
    "GiftCard",
    "LabelPayer",
    "LabelPayerReason",
    "Money",
    "Order",
    "OrderLineItem",
    "OrderProtection",
    "PersonName",
    "Product",
    "ProductVariant",
    "RedoModel",
    "Return",
    "ReturnDropoff",
    "ReturnEvent",
    "ReturnItem",
    "ReturnProtection",
    "ReturnShipment",
    "ReturnStatus",
    "ReturnType",
    "ShipmentStatus",
    "TaxedMoney",
    "Totals",
    "UnroutableEvent",
    "Weight",
    "decode_event",
    "decode_fitting",
    "event_kind",
    "parse_json",
]


def __getattr__(name: str) -> Any:
    if name == "EVENT_TYPES":  # the 0.2 name of EVENT_NAMES
        deprecated("redo_hooks.models.EVENT_TYPES", "EVENT_NAMES")
        return EVENT_NAMES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
