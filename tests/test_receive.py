"""Sans-I/O parsing: strict bytes, tolerant shape, typed errors."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redo_hooks.errors import MalformedBody, RejectedRequest, UnprocessableEvent
from redo_hooks.models import parse_json
from redo_hooks.receiver.body import parse_body
from redo_hooks.store.events import event_key
from redo_hooks.testing import sample_body


def test_a_valid_body_gives_type_subject_and_key() -> None:
    body = sample_body("return.updated", return_id="ret-1")
    incoming = parse_body(body)
    assert (incoming.type, incoming.subject, incoming.name) == (
        "updated",
        "ret-1",
        "return.updated",
    )
    assert incoming.key == event_key(body) and len(incoming.key) == 32
    assert incoming.schema_errors == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty_body"),
        (b'{"type": "created", "return": {"id": "r"', "malformed_json"),  # truncated
        (b'{"type": "created", "return": {"id": "r"}, "n": NaN}', "malformed_json"),
        (b'{"type": "created", "return": {"id": "r"}, "n": Infinity}', "malformed_json"),
        (b'{"type": "created", "return": {"id": "r"}} {}', "malformed_json"),  # trailing data
        (b'{"type": "cr\xff", "return": {"id": "r"}}', "malformed_json"),  # invalid UTF-8
        (b"[1, 2]", "not_an_object"),
        (b'"created"', "not_an_object"),
        (b"null", "not_an_object"),
    ],
)
def test_bytes_that_are_not_a_strict_json_object_are_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_body(body)
    assert caught.value.reason == reason
    assert caught.value.status == 400


def test_nesting_deeper_than_the_limit_is_malformed() -> None:
    deep = b'{"type":"created","return":{"id":"r"},"x":' + b"[" * 40 + b"]" * 40 + b"}"
    with pytest.raises(MalformedBody) as caught:
        parse_body(deep, max_depth=32)
    assert caught.value.reason == "too_deep"
    assert parse_body(deep, max_depth=64).subject == "r"  # Incoming: the store's name


@pytest.mark.parametrize(
    "raw",
    [
        {"return": {"id": "r"}},
        {"type": "created"},
        {"type": "created", "return": {}},
        {"type": "created", "return": {"id": ""}},
        {"type": "created", "return": {"id": None}},
        {"type": "created", "return": "r"},
        {"type": None, "return": {"id": "r"}},
        {"type": {"a": 1}, "return": {"id": "r"}},
        {"type": 1, "return": {"id": "r"}},  # was routed as "return.1"
        {"type": True, "return": {"id": "r"}},
        {"type": "", "return": {"id": "r"}},
        {"type": "created", "return": {"id": 42}},  # was taken as "42"
        {"type": "created", "return": {"id": 4.2}},
        {"type": "created", "return": {"id": ["r"]}},
    ],
)
def test_bodies_without_what_routing_needs_are_unprocessable(raw: object) -> None:
    with pytest.raises(UnprocessableEvent) as caught:
        parse_body(orjson.dumps(raw))
    assert caught.value.status == 422
    assert caught.value.errors, "the problem lists where"


def test_a_routable_body_with_off_schema_fields_is_accepted_with_the_errors_noted() -> None:
    raw = orjson.loads(sample_body(return_id="r9"))
    raw["return"]["createdAt"] = "not a date"
    incoming = parse_body(orjson.dumps(raw))
    assert incoming.subject == "r9"
    assert any("createdAt" in e for e in incoming.schema_errors)


def test_the_secret_inputs_are_never_echoed_in_errors() -> None:
    with pytest.raises(UnprocessableEvent) as caught:
        parse_body(orjson.dumps({"type": "created", "return": {"id": "", "x": "SECRET-VALUE"}}))
    assert "SECRET-VALUE" not in repr(caught.value.errors) + str(caught.value)


#: Bodies that are sometimes events: raw bytes, JSON of any shape, and
#: objects close to an event (a type and a return id of any kind).
near_events = st.builds(
    lambda kind, rid, extra: json.dumps({"type": kind, "return": {"id": rid}, **extra}).encode(),
    st.sampled_from(["created", "updated", "new-kind", "", 7, None]),
    st.text(max_size=8) | st.integers() | st.none(),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | near_events)
def test_arbitrary_bytes_give_an_event_or_a_rejection_never_another_error(body: bytes) -> None:
    try:
        incoming = parse_body(body)
    except RejectedRequest as refused:
        # A 400 or 422 that says why, in a stable reason slug; nothing else escapes.
        assert refused.status in (400, 422) and refused.reason, refused
        return
    # Accepted: a JSON object whose type and return id are non-empty strings.
    raw = orjson.loads(body)
    assert incoming.subject == raw["return"]["id"] != ""
    assert incoming.type == raw["type"] != ""
    assert incoming.body == body


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_arbitrary_json_gives_an_event_or_a_rejection(value: object) -> None:
    try:
        incoming = parse_body(orjson.dumps(value))
    except RejectedRequest:
        return
    assert isinstance(value, dict) and incoming.subject


@pytest.mark.parametrize(
    ("fragment", "read_as"),
    [
        (b'"\\ud83d"', "\ufffd"),  # a string cut mid-emoji by a JavaScript sender
        (b'"ok \\udc00 then"', "ok \ufffd then"),  # a stray low surrogate
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a proper pair stays what it is
        (b"1e400", float("inf")),  # beyond a double: the grammar allows it
    ],
)
def test_what_the_json_grammar_allows_but_orjson_refuses_is_accepted(
    fragment: bytes, read_as: object
) -> None:
    body = b'{"type":"created","return":{"id":"r"},"note":' + fragment + b"}"
    incoming = parse_body(body)
    assert incoming.body == body  # stored as received
    assert parse_json(body)["note"] == read_as


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"created","return":{"id":"r"},"note":NaN}',
        b'{"type":"created","return":{"id":"r"},"note":"\\ud83d"} trailing',
        b'{"type":"created","return":{"id":"r"},"note":"\\ud83d","x":"\xff"}',
    ],
)
def test_the_fallback_keeps_json_strict(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse_body(body)
