"""Field-level tolerance and the cheap depth bound, by property.

A value that does not fit its field reads as ``None`` on the model, stays
untouched in ``raw`` and is listed in ``schema_errors``; everything else
decodes exactly as if that value had been ``null``.
"""

from __future__ import annotations

import copy
import typing
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redo_hooks.models import ReturnEvent, UnroutableEvent, decode_event
from redo_hooks.models.jsontext import deeper_than, value_deeper_than
from redo_hooks.models.tolerance import FINE_MENDS
from redo_hooks.testing import sample_event

Path = tuple[str | int, ...]


def _struct_of(annotation: Any) -> Any:
    """The struct type inside ``X | None`` or ``list[X] | None``, if any."""
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            return arg
        inner = _struct_of(arg) if typing.get_origin(arg) is list else None
        if inner is not None:
            return inner
    return None


def typed_paths(raw: Any, model: Any, prefix: Path = ()) -> list[tuple[Path, Any]]:
    """Every path of ``raw`` that a model field reads, with that field's type."""
    found: list[tuple[Path, Any]] = []
    hints = typing.get_type_hints(model)
    for field in msgspec.structs.fields(model):
        if field.encode_name not in raw:
            continue
        path = (*prefix, field.encode_name)
        annotation = hints[field.name]
        found.append((path, annotation))
        value, inner = raw[field.encode_name], _struct_of(annotation)
        if inner is None:
            continue
        if type(value) is dict:
            found += typed_paths(value, inner, path)
        elif type(value) is list:
            for index, item in enumerate(value):
                if type(item) is dict:
                    found += typed_paths(item, inner, (*path, index))
    return found


EXAMPLE = sample_event("return.created", return_id="ret-t")
ROUTING = {("type",), ("return",), ("return", "id")}
MENDABLE = [
    (path, annotation)
    for path, annotation in typed_paths(EXAMPLE, ReturnEvent)
    if path not in ROUTING and annotation is not Any
]


def set_path(raw: Any, path: Path, value: Any) -> Any:
    out = copy.deepcopy(raw)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def dotted(path: Path) -> str:
    return "".join(f"[{s}]" if type(s) is int else f".{s}" for s in path).lstrip(".")


def test_the_example_has_mendable_fields_at_every_depth() -> None:
    assert {len(path) for path, _ in MENDABLE} >= {1, 2, 3, 4, 5, 6}


def wrong_for(annotation: Any, variant: int) -> Any:
    """A value of another JSON shape than ``annotation`` reads (an object with
    unknown keys would fit any struct, so structs get numbers and text)."""
    kinds = {typing.get_origin(a) or a for a in typing.get_args(annotation) or (annotation,)}
    if list in kinds:
        return (
            ["text", 7][variant % 2]
            if _struct_of(annotation) is None
            else [{"x": 1}, "text"][variant % 2]
        )
    if _struct_of(annotation) is not None:
        return [7, "text", True][variant % 3]
    return [{"surprise": [1]}, [1, 2]][variant % 2]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.sampled_from(MENDABLE), min_size=1, max_size=4, unique_by=lambda p: p[0]),
    variant=st.integers(min_value=0, max_value=5),
)
def test_a_value_of_the_wrong_shape_reads_as_none_and_is_listed(
    picks: list[tuple[Path, Any]], variant: int
) -> None:
    # Nested picks: the outermost one wins (the inner value is inside it).
    outer = [(p, a) for p, a in picks if not any(p[: len(q)] == q and q != p for q, _ in picks)]
    body = EXAMPLE
    for path, annotation in outer:
        body = set_path(body, path, wrong_for(annotation, variant))
    sent = orjson.dumps(body)
    event = decode_event(sent, key="k")
    paths = [p for p, _ in outer]
    expected = ReturnEvent.from_raw(_nulled(EXAMPLE, paths))
    assert event == expected, "everything else reads as if the value were null"
    assert sorted(e.split(":")[0] for e in event.schema_errors) == sorted(map(dotted, paths))
    assert event.raw == body, "the raw body is untouched"
    assert event.key == "k" and expected.schema_errors == []


def _nulled(raw: Any, paths: list[Path]) -> Any:
    for path in paths:
        raw = set_path(raw, path, None)
    return raw


def test_a_list_element_of_the_wrong_shape_is_left_out() -> None:
    body = copy.deepcopy(EXAMPLE)
    good = body["return"]["items"][0]
    body["return"]["items"] = ["junk", good, 7, good]
    event = decode_event(orjson.dumps(body))
    assert [item.id for item in event.return_.items or []] == [good["id"], good["id"]]
    assert event.schema_errors == [
        "return.items[0]: Expected `object`, got `str`",
        "return.items[1]: Expected `object`, got `int`",
    ]
    assert event.raw["return"]["items"][0] == "junk"


def test_a_number_where_text_is_expected_is_read_as_its_text_and_not_listed() -> None:
    body = set_path(EXAMPLE, ("order", "id"), 42)
    event = decode_event(orjson.dumps(body))
    assert event.order is not None and event.order.id == "42"
    assert event.schema_errors == []


@pytest.mark.parametrize(
    "path, value",
    [(("type",), 1), (("return",), "r"), (("return", "id"), 7), (("return", "id"), None)],
)
def test_what_routing_needs_cannot_be_mended(path: Path, value: Any) -> None:
    with pytest.raises(UnroutableEvent):
        decode_event(orjson.dumps(set_path(EXAMPLE, path, value)))


def test_thousands_of_wrong_values_cost_a_bounded_number_of_mends() -> None:
    body = copy.deepcopy(EXAMPLE)
    body["return"]["items"] = [{"id": i, "quantity": "many"} for i in range(3000)]
    event = decode_event(orjson.dumps(body))
    # FINE_MENDS single mends (ids read as text among them, unlisted), then
    # the whole section is nulled: the work does not grow with the errors.
    assert FINE_MENDS // 2 < len(event.schema_errors) <= FINE_MENDS + 1
    assert event.schema_errors[-1].startswith("return.items:")
    assert event.return_.items is None
    assert len(event.raw["return"]["items"]) == 3000


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(alphabet='ab{}[]"\\\n'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='k{["\\'), inner, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(value=JSON, limit=st.integers(min_value=0, max_value=12))
def test_the_depth_bound_on_bytes_agrees_with_walking_the_value(value: Any, limit: int) -> None:
    body = orjson.dumps({"type": "created", "x": value})
    assert deeper_than(body, limit) == value_deeper_than(orjson.loads(body), limit)


def test_a_deep_body_is_caught_even_when_its_strings_hold_brackets() -> None:
    body = orjson.dumps({"note": "}]" * 40, "x": [[[[[[[[[1]]]]]]]]]})
    assert deeper_than(body, 9) and not deeper_than(body, 10)


def test_brackets_in_strings_that_balance_each_other_do_not_hide_depth() -> None:
    # Read without the strings' quotes, "]]]]" closes four levels early and
    # "[[[[" reopens them: the brackets balance, and show depth 6, not 10.
    value: Any = ["]]]]", [[[[1]]]], "[[[["]
    for _ in range(4):
        value = [value]
    body = orjson.dumps({"x": value})
    depth = 10  # the object, four lists, the list of strings, four lists
    assert value_deeper_than(orjson.loads(body), depth - 1)
    assert not value_deeper_than(orjson.loads(body), depth)
    for limit in range(2, 13):
        assert deeper_than(body, limit) == (limit < depth)
