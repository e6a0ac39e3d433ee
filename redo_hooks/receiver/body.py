"""Sans-I/O receiving: body bytes in, a routable event (or a typed error) out.

No sockets, no Redis, no Starlette: the ASGI adapter and the test helpers call
:func:`parse_body`. Strict bytes, tolerant shape (``docs/design.md``): the JSON must be
RFC 8259 (orjson refuses NaN, trailing data and invalid UTF-8) and bounded in
depth; the shape only needs what routing needs. A body whose other fields do
not fit the models is still accepted, because refusing it would lose it for
good: the worker dead-letters it with the validation error instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import MalformedBody, UnprocessableEvent
from ..models import ReturnEvent
from ..store.events import Incoming, event_key, parse_json


def parse_body(body: bytes, *, max_depth: int = 32, store: str | None = None) -> Incoming:
    """Parse and validate a webhook body; raise ``MalformedBody`` or ``UnprocessableEvent``.

    ``store``: the store the request's secret is labelled with.
    """
    if not body:
        raise MalformedBody("empty body", reason="empty_body")
    try:
        raw = parse_json(body)
    except ValueError as exc:  # orjson's JSONDecodeError, UnicodeDecodeError among them
        raise MalformedBody(f"body is not strict JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedBody(
            f"body is a JSON {type(raw).__name__}, expected an object", reason="not_an_object"
        )
    # Brackets bound the depth from above: only walk the tree when they could
    # exceed the limit, which no ordinary event does.
    if body.count(b"{") + body.count(b"[") > max_depth and _deeper_than(raw, max_depth):
        raise MalformedBody(f"JSON nested deeper than {max_depth}", reason="too_deep")
    event_type, subject, wrong = _routing(raw)
    if wrong:
        detail = "the event lacks what routing needs (type, return.id)"
        raise UnprocessableEvent(detail, errors=wrong)
    key = event_key(body, store)
    try:
        ReturnEvent.from_raw(raw, key, store)
    except ValidationError as full:
        schema_errors = [f"{e['loc']}: {e['msg']}" for e in _locations(full)]
    else:
        schema_errors = []
    return Incoming(
        type=event_type,
        subject=subject,
        key=key,
        body=body,
        schema_errors=schema_errors,
        store=store,
    )


def _routing(raw: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """``type`` and ``return.id``: each must be a non-empty JSON string, as sent.

    Checked on the raw JSON, before the tolerant model (which would turn a
    number into a string and route ``"type": 1`` as ``return.1``).
    """
    event_type, ret = raw.get("type"), raw.get("return")
    subject = ret.get("id") if type(ret) is dict else None
    wrong = []
    if type(event_type) is not str or not event_type:
        wrong.append({"loc": "type", "msg": "must be a non-empty string"})
    if type(subject) is not str or not subject:
        where = "return.id" if type(ret) is dict else "return"
        what = "a non-empty string" if type(ret) is dict else "an object with an id"
        wrong.append({"loc": where, "msg": f"must be {what}"})
    return str(event_type), str(subject), wrong


def _locations(exc: ValidationError) -> list[dict[str, Any]]:
    # Locations and messages only: never echo input values back.
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]} for err in exc.errors()
    ]


def _deeper_than(value: Any, limit: int) -> bool:
    # Iterative (no recursion to exhaust) and visits containers only.
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, level = pop()
        if level > limit:
            return True
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, level + 1))
    return False
