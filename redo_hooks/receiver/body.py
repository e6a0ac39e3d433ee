"""Sans-I/O receiving: body bytes in, a routable event (or a typed error) out.

No sockets, no Redis, no Starlette: the ASGI adapter and the test helpers call
:func:`parse_body`. Strict bytes, tolerant shape (DESIGN.md): the JSON must be
RFC 8259 (orjson refuses NaN, trailing data and invalid UTF-8) and bounded in
depth; the shape only needs what routing needs. A body whose other fields do
not fit the models is still accepted, because refusing it would lose it for
good: the worker dead-letters it with the validation error instead.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import MalformedBody, UnprocessableEvent
from ..models import ReturnEvent
from ..store.events import Incoming, event_key


class _ReturnRef(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    id: str = Field(min_length=1)


class _Routing(BaseModel):
    """What routing needs, validated by the same rules as the full model."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    type: str
    return_: _ReturnRef = Field(alias="return")


def parse_body(body: bytes, *, max_depth: int = 32, store: str | None = None) -> Incoming:
    """Parse and validate a webhook body; raise ``MalformedBody`` or ``UnprocessableEvent``.

    ``store``: the store the request's secret is labelled with.
    """
    if not body:
        raise MalformedBody("empty body", reason="empty_body")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body is not strict JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedBody(
            f"body is a JSON {type(raw).__name__}, expected an object", reason="not_an_object"
        )
    # Brackets bound the depth from above: only walk the tree when they could
    # exceed the limit, which no ordinary event does.
    if body.count(b"{") + body.count(b"[") > max_depth and _deeper_than(raw, max_depth):
        raise MalformedBody(f"JSON nested deeper than {max_depth}", reason="too_deep")
    key = event_key(body, store)
    try:
        event = ReturnEvent.from_raw(raw, key, store)
    except ValidationError as full:
        try:
            routing = _Routing.model_validate(raw)
        except ValidationError as exc:
            raise UnprocessableEvent(
                "the event lacks what routing needs (type, return.id)",
                errors=_locations(exc),
            ) from None
        return Incoming(
            type=routing.type,
            subject=routing.return_.id,
            key=key,
            body=body,
            schema_errors=[f"{e['loc']}: {e['msg']}" for e in _locations(full)],
            store=store,
        )
    return Incoming(type=str(event.type), subject=event.subject, key=key, body=body, store=store)


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
