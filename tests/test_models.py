"""Models: the spec's example and generated bodies parse; tolerance rules hold."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redo_hooks.models import (
    CompensationMethod,
    EventKind,
    ReturnEvent,
    ReturnStatus,
    ShipmentStatus,
)
from redo_hooks.receiver.body import parse_body

from .schema_strategy import from_schema
from .spec import components, webhook_body


def example() -> dict[str, Any]:
    return copy.deepcopy(webhook_body()["example"])


def test_spec_example_parses_into_typed_fields() -> None:
    event = ReturnEvent.from_raw(example(), "k1")
    assert event.type == EventKind.CREATED
    assert event.return_id == "64df65d4c5a4ca3eff4b4e43"
    assert event.name == "return.created"
    assert event.at == datetime.fromisoformat("2023-08-18T12:00:00+00:00")
    assert event.return_.status is ReturnStatus.OPEN
    assert event.return_.compensation_methods == [
        CompensationMethod.REFUND,
        CompensationMethod.STORE_CREDIT,
        CompensationMethod.EXCHANGE,
    ]
    item = (event.return_.items or [])[0]
    assert item.refund is not None and item.refund.amount is not None
    assert item.refund.amount.amount == Decimal("29.99")
    assert item.order_item is not None and item.order_item.line_item_id == "12345678901234"
    assert event.return_.shipment is not None
    assert event.return_.shipment.status is ShipmentStatus.PRE_TRANSIT
    assert event.order is not None and event.order.total is not None
    assert event.order.total.amount == Decimal("38.38")
    assert event.key == "k1"
    assert event.raw["merchantName"] == "Example Merchant"


def test_unknown_fields_enum_values_and_nulls_are_kept() -> None:
    body = example()
    body["brandNewTopLevel"] = {"x": 1}
    body["return"]["status"] = "teleported"
    body["return"]["shipment"]["status"] = "on_the_moon"
    body["return"]["createdAt"] = None
    body["return"]["source"] = None
    body["return"]["items"][0]["newItemField"] = [1, 2]
    body["type"] = "archived"
    event = ReturnEvent.from_raw(body)
    assert event.return_.status == "teleported"
    assert not isinstance(event.return_.status, ReturnStatus)
    assert event.return_.shipment is not None
    assert event.return_.shipment.status == "on_the_moon"
    assert event.return_.created_at is None
    assert event.return_.source is None
    assert event.type == "archived"
    assert event.name == "return.archived"
    assert event.raw["brandNewTopLevel"] == {"x": 1}
    assert event.raw["return"]["items"][0]["newItemField"] == [1, 2]
    assert event.raw["return"]["status"] == "teleported"
    assert event.schema_errors == []


@pytest.mark.parametrize("amount", ["29.99", 29.99, 30, "0.10"])
def test_money_accepts_decimal_strings_and_numbers(amount: Any) -> None:
    body = example()
    body["order"]["total"]["amount"] = amount
    event = ReturnEvent.from_raw(body)
    assert event.order is not None and event.order.total is not None
    assert event.order.total.amount == Decimal(str(amount))


def test_old_shapes_from_the_spec_history_are_accepted() -> None:
    # Old spec versions: closed/transit statuses, numeric money, missing
    # now-required fields, numbers where strings are expected.
    refund = {"amount": {"amount": 12.5, "currency": "USD"}}
    body = {
        "type": "updated",
        "return": {"id": "r1", "status": "closed", "totals": {"refund": refund}},
        "order": {"id": 42},
    }
    event = ReturnEvent.from_raw(body)
    assert event.return_.status == "closed"
    assert event.order is not None and event.order.id == "42"


def test_only_type_and_return_id_are_required() -> None:
    event = ReturnEvent.from_raw({"type": "created", "return": {"id": "r1"}})
    assert event.return_id == "r1"
    assert event.order is None and event.at is None


BODY_SCHEMA = webhook_body()["schema"]


def _event_strategy() -> st.SearchStrategy[dict[str, Any]]:
    comps = components()
    return_schema = from_schema({"$ref": "#/components/schemas/return-read.schema"}, comps)
    envelope = from_schema(BODY_SCHEMA, comps)
    return st.tuples(
        envelope,
        return_schema,
        st.sampled_from(["created", "updated", "backfill"]),
        st.text(min_size=1, max_size=30),
    ).map(lambda t: {**t[0], "type": t[2], "return": {**t[1], "id": t[3]}})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_event_strategy())
def test_bodies_generated_from_the_spec_schemas_parse(body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    incoming = parse_body(raw)
    assert incoming.schema_errors == []
    assert incoming.subject == body["return"]["id"]
    assert ReturnEvent.from_raw(orjson.loads(raw)).raw == body
