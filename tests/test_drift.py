"""Schema drift: what Redo sends that the models do not know, reported and bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from redo_hooks.cli import main
from redo_hooks.models import ReturnEvent
from redo_hooks.models.drift import LIMIT, drift, type_findings
from redo_hooks.receiver.drift import DriftWatch
from redo_hooks.store.drift import PARTS
from redo_hooks.testing import sample_event

from .conftest import SECRET, MakeHooks

AUTH = {"Authorization": f"Bearer {SECRET}"}


def mutated(**changes: Any) -> dict[str, Any]:
    body = sample_event("return.created", return_id="ret-drift")
    for path, value in changes.items():
        node: Any = body
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return body


def test_the_spec_example_has_no_drift() -> None:
    assert drift(sample_event()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"newTop": 1}, [("field", "newTop", "")]),
        ({"return__loyaltyTier": "gold"}, [("field", "return.loyaltyTier", "")]),
        ({"return__items__0__warranty": {"months": 3}}, [("field", "return.items[].warranty", "")]),
        (
            {"order__customer__pronouns": "they"},
            [("field", "order.customer.pronouns", "")],
        ),
        ({"return__status": "teleported"}, [("enum", "return.status", "teleported")]),
        (
            {"return__compensationMethods": ["refund", "crypto"]},
            [("enum", "return.compensationMethods", "crypto")],
        ),
        ({"type": "exploded"}, [("enum", "type", "exploded")]),
    ],
    ids=lambda v: str(v)[:40],
)
def test_new_fields_and_enum_values_are_named_by_path(
    changes: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    assert drift(mutated(**changes)) == expected


def test_a_value_of_another_type_is_reported_from_the_schema_errors() -> None:
    body = mutated(return__items__0__quantity="several", return__createdAt=5)
    event = ReturnEvent.from_raw(body)
    found = type_findings(event.schema_errors)
    assert {(kind, path) for kind, path, _ in found} == {
        ("type", "return.items[].quantity"),
        ("type", "return.createdAt"),
    }
    assert drift(body) == []  # not a new field: the field is known, its value is off


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(
        st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8).map(lambda s: "zz" + s),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    where=st.sampled_from(["", "return", "order", "return.items.0", "order.customer"]),
)
def test_every_unknown_name_added_anywhere_is_found_once(names: list[str], where: str) -> None:
    body = sample_event()
    node: Any = body
    for part in where.split(".") if where else []:
        node = node[int(part)] if part.isdigit() else node[part]
    for name in names:
        node[name] = 1
    prefix = where.replace(".0", "[]")
    expected = {("field", f"{prefix}.{n}" if prefix else n, "") for n in names}
    assert set(drift(body)) == expected


def test_a_body_of_thousands_of_unknown_paths_costs_a_bounded_walk() -> None:
    body = sample_event()
    for n in range(5000):
        body["return"][f"extra{n}"] = {"nested": [n]}
    assert len(drift(body)) == LIMIT


def test_the_receiver_records_counts_logs_each_new_finding_once_and_caps_them(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(drift_sample_interval=0, drift_max_findings=3)
    hooks.on("return", name="h")(lambda event: None)
    with capture_logs() as logs, TestClient(hooks.asgi()) as client:
        for n in range(3):
            body = mutated(return__status="teleported", return__newField=n)
            client.post("/", content=orjson.dumps(body), headers=AUTH)
        # Three more distinct paths: one fits under the cap, two do not.
        client.post("/", content=orjson.dumps(mutated(a=1, b=2, c=3)), headers=AUTH)
    drifted = [e for e in logs if e["event"] == "schema_drift"]
    assert sorted((e["kind"], e["path"]) for e in drifted) == [
        ("enum", "return.status"),
        ("field", "a"),
        ("field", "return.newField"),
    ]
    raw: dict[bytes, bytes] = redis.hgetall("rh:drift:count")  # type: ignore[assignment]
    counts = {k.decode(): int(v) for k, v in raw.items()}
    assert counts == {
        "enum|return.status|teleported": 3,
        "field|return.newField|": 3,
        "field|a|": 1,
    }
    assert int(redis.get("rh:drift:untracked") or 0) == 2
    assert redis.hget("rh:drift:sample", "field|a|") == b"ret-drift"

    with TestClient(hooks.asgi()) as client:
        metrics = client.get("/metrics").text
    assert (
        'redo_hooks_schema_drift_total{kind="enum",path="return.status",value="teleported"} 3.0'
        in metrics
    )
    assert "redo_hooks_schema_drift_untracked_total 2.0" in metrics
    assert metrics.count("redo_hooks_schema_drift_total{") == 3  # bounded labels


def test_findings_still_being_recorded_are_kept_when_the_receiver_stops(
    make_hooks: MakeHooks, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording runs beside the request; closing the receiver waits for it."""
    hooks = make_hooks(drift_sample_interval=0)
    hooks.on("return", name="h")(lambda event: None)
    record = DriftWatch._record

    async def slow_record(self: DriftWatch, *args: Any) -> None:
        await asyncio.sleep(0.2)  # still under way when the client below stops the app
        await record(self, *args)

    monkeypatch.setattr(DriftWatch, "_record", slow_record)
    with TestClient(hooks.asgi()) as client:
        body = mutated(return__status="teleported")
        assert client.post("/", content=orjson.dumps(body), headers=AUTH).status_code == 202
    assert redis.hget("rh:drift:count", "enum|return.status|teleported") == b"1"


def test_status_shows_the_findings(
    make_hooks: MakeHooks, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    hooks = make_hooks(drift_sample_interval=0)
    hooks.on("return", name="h")(lambda event: None)
    with TestClient(hooks.asgi()) as client:
        client.post("/", content=orjson.dumps(mutated(return__status="teleported")), headers=AUTH)
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    monkeypatch.delitem(__import__("sys").modules, "examples.shop.hooks", raising=False)
    shown = CliRunner().invoke(main, ["status", "examples.shop.hooks:hooks", "--json"])
    [finding] = orjson.loads(shown.stdout)["schema_drift"]
    assert (finding["kind"], finding["path"], finding["value"]) == (
        "enum",
        "return.status",
        "teleported",
    )
    assert finding["count"] == 1 and finding["sample_return"] == "ret-drift"
    readable = CliRunner().invoke(main, ["status", "examples.shop.hooks:hooks"]).stdout
    assert "schema drift" in readable and "teleported" in readable


def test_a_drifting_flood_keeps_redis_and_the_receiver_bounded(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """600 bodies, each with a path never seen before: 20 are tracked, the rest counted."""
    hooks = make_hooks(drift_sample_interval=0, drift_max_findings=20)
    hooks.on("return", name="h")(lambda event: None)
    app = hooks.asgi()
    sizes = []
    with TestClient(app) as client:
        for batch in range(2):
            for n in range(300 * batch, 300 * (batch + 1)):
                body = mutated()
                body[f"novel{n}"] = 1
                client.post("/", content=orjson.dumps(body), headers=AUTH)
            sizes.append(sum(redis.memory_usage(f"rh:drift:{part}") or 0 for part in PARTS))
        watch = app.state.receiver.drift
        assert watch.pending == set()  # every recording finished; none kept
    assert redis.hlen("rh:drift:count") == 20
    assert int(redis.get("rh:drift:untracked") or 0) == 580
    assert sizes[0] == sizes[1]  # the second 300 new paths added no byte to the records
