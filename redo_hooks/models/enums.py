"""Known values of the open enums in Redo's schema (``components.schemas``).

Fields holding these are typed ``str``: a known value is decoded into its
member, a new value Redo adds tomorrow is kept as a plain ``str`` rather than
rejected. Members are ``StrEnum``, so ``event.return_.status ==
ReturnStatus.COMPLETE`` works either way (and so does ``match``).
"""

from enum import StrEnum

from ..errors import ConfigurationError


class EventKind(StrEnum):
    """``type`` of the return webhook body."""

    CREATED = "created"
    UPDATED = "updated"
    BACKFILL = "backfill"


class ReturnStatus(StrEnum):
    """``return-status.schema``."""

    OPEN = "open"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    NEEDS_REVIEW = "needs_review"
    IN_REVIEW = "in_review"
    COMPLETE = "complete"
    REJECTED = "rejected"
    FLAGGED = "flagged"
    PRE_SHIPMENT = "pre_shipment"
    DELETED = "deleted"


class ReturnType(StrEnum):
    """``return-type.schema``."""

    CLAIM = "claim"
    RETURN = "return"
    WARRANTY = "warranty"


class ExchangeProvision(StrEnum):
    """``exchange-provision.schema``."""

    INSTANT = "instant"
    DEFERRED = "deferred"


class ShipmentStatus(StrEnum):
    """``return-shipment.schema`` ``status``."""

    UNKNOWN = "unknown"
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    CANCELLED = "cancelled"
    DELIVERED = "delivered"
    ERROR = "error"
    FAILURE = "failure"
    RETURN_TO_SENDER = "return_to_sender"
    EXPIRED = "expired"


class CompensationMethod(StrEnum):
    """``return-read.schema`` ``compensationMethods[]``."""

    REFUND = "refund"
    STORE_CREDIT = "store_credit"
    EXCHANGE = "exchange"


class ExternalProvider(StrEnum):
    """``return-read.schema`` ``externalReturnIds[].provider``."""

    SHOPIFY = "shopify"


class LabelPayer(StrEnum):
    """``return-read.schema`` ``protection.labelPayer``."""

    CUSTOMER = "customer"
    MERCHANT = "merchant"
    REDO = "redo"


class LabelPayerReason(StrEnum):
    """``return-read.schema`` ``protection.labelPayerReason``."""

    REDO_PAYS_ALL_LABELS = "REDO_PAYS_ALL_LABELS"
    REDO_ORDER_HAS_FINAL_SALE_PROTECTION = "REDO_ORDER_HAS_FINAL_SALE_PROTECTION"
    REDO_ORDER_HAS_RETURNS_COVERAGE = "REDO_ORDER_HAS_RETURNS_COVERAGE"
    REDO_ORDER_HAS_WARRANTY_COVERAGE = "REDO_ORDER_HAS_WARRANTY_COVERAGE"
    REDO_RECYCLING_SETTING = "REDO_RECYCLING_SETTING"
    MERCHANT_DAMAGED_OR_WRONG_PRODUCT = "MERCHANT_DAMAGED_OR_WRONG_PRODUCT"
    MERCHANT_SAFETY_NET = "MERCHANT_SAFETY_NET"
    MERCHANT_RECYCLING_SETTING = "MERCHANT_RECYCLING_SETTING"
    SHOPPER_UNCOVERED = "SHOPPER_UNCOVERED"
    SHOPPER_RECYCLING_SETTING = "SHOPPER_RECYCLING_SETTING"


#: Redo's events by name (``event.name``): how handlers, commands, filters and
#: subscriptions name them. The body's own ``type`` (``event.type``) is the
#: bare :class:`EventKind` after ``return.``.
EVENT_NAMES: tuple[str, ...] = tuple(f"return.{kind.value}" for kind in EventKind)


def event_kind(name: str) -> EventKind:
    """The body's ``type`` of the event named ``name`` (``"return.created"`` -> ``CREATED``).

    The one vocabulary of event names: every command and helper takes the
    names handlers subscribe to. Anything else raises ``ConfigurationError``
    listing the valid names (with a hint for the body's bare ``"created"``).
    """
    if name in EVENT_NAMES:
        return EventKind(name.removeprefix("return."))
    hint = f" (did you mean 'return.{name}'?)" if f"return.{name}" in EVENT_NAMES else ""
    raise ConfigurationError(
        f"unknown event name {name!r}{hint}; use one of {', '.join(EVENT_NAMES)}"
    )
