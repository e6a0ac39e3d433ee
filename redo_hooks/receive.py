"""Sans-I/O receiving: body bytes in, a routable event (or a typed error) out.

No sockets, no Redis, no Starlette: the ASGI adapter and the test helpers call
:func:`parse_body`. Strict bytes, tolerant shape (DESIGN.md): the JSON must be
RFC 8259 (orjson refuses NaN, trailing data and invalid UTF-8) and bounded in
depth; the shape only needs what routing needs. A body whose other fields do
not fit the models is still accepted, because refusing it would lose it for
good: the worker dead-letters it with the validation error instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import MalformedBody, UnprocessableEvent
from .models import ReturnEvent


class _ReturnRef(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    id: str = Field(min_length=1)


class _Routing(BaseModel):
    """What routing needs, validated by the same rules as the full model."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    type: str
    return_: _ReturnRef = Field(alias="return")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A body that can be routed: its type, subject, dedupe key and bytes."""

    type: str
    subject: str
    key: str
    body: bytes
    event: ReturnEvent | None
    schema_errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Routing name, e.g. ``"return.created"``."""
        return f"return.{self.type}"


def event_key(body: bytes) -> str:
    """The dedupe key of a body: Redo redelivers the same bytes on retry."""
    return hashlib.sha256(body).hexdigest()[:32]


def parse_body(body: bytes, *, max_depth: int = 32) -> Incoming:
    """Parse and validate a webhook body; raise ``MalformedBody`` or ``UnprocessableEvent``."""
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
    if body.count(b"{") + body.count(b"[") > max_depth and _depth(raw) > max_depth:
        raise MalformedBody(f"JSON nested deeper than {max_depth}", reason="too_deep")
    key = event_key(body)
    try:
        event = ReturnEvent.from_raw(raw, key)
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
            event=None,
            schema_errors=[f"{e['loc']}: {e['msg']}" for e in _locations(full)],
        )
    return Incoming(type=str(event.type), subject=event.subject, key=key, body=body, event=event)


def _locations(exc: ValidationError) -> list[dict[str, Any]]:
    # Locations and messages only: never echo input values back.
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"]} for err in exc.errors()
    ]


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node if isinstance(v, dict | list))
    return deepest
