"""Sans-I/O receiving: body bytes in, a routable event (or a typed error) out.

No sockets, no Redis, no Starlette: the ASGI adapter and the test helpers call
:func:`parse_body`. Strict bytes, tolerant shape (``docs/design.md``): the JSON must be
RFC 8259 (no NaN, no trailing data, valid UTF-8) and bounded in depth; the
shape only needs what routing needs. A value elsewhere that does not fit the
models is listed in ``schema_errors`` and the event is still accepted, because
refusing it would lose it for good.

The common case is one typed decode straight from the bytes
(:func:`redo_hooks.models.decode_fitting`), plus the UTF-8 and depth checks
for what that decoder skips over (unknown fields). Only a body that does not
fit is parsed into Python values and checked step by step.
"""

from __future__ import annotations

from typing import Any

from ..errors import MalformedBody, UnprocessableEvent
from ..models import ReturnEvent, UnroutableEvent, decode_event, decode_fitting, parse_json
from ..models.jsontext import deeper_than, is_utf8, value_deeper_than
from ..store.events import Incoming, event_key


def parse_body(body: bytes, *, max_depth: int = 32, store: str | None = None) -> Incoming:
    """Parse and validate a webhook body; raise ``MalformedBody`` or ``UnprocessableEvent``.

    ``store``: the store the request's secret is labelled with. Whatever the
    decoders raise for a body is a ``MalformedBody`` (400), never a 5xx: a
    nesting too deep for them (``RecursionError``, whatever the limit says),
    a number or string they cannot take.
    """
    try:
        return _parse(body, max_depth, store)
    except RecursionError:
        raise MalformedBody(f"JSON nested deeper than {max_depth}", reason="too_deep") from None
    except (ValueError, OverflowError) as exc:  # msgspec's and orjson's errors among them
        raise MalformedBody(
            f"body could not be decoded: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def _parse(body: bytes, max_depth: int, store: str | None) -> Incoming:
    if not body:
        raise MalformedBody("empty body", reason="empty_body")
    if not is_utf8(body):
        raise MalformedBody("body is not strict JSON: it is not valid UTF-8")
    event = decode_fitting(body)
    if event is not None:
        if deeper_than(body, max_depth):
            raise MalformedBody(f"JSON nested deeper than {max_depth}", reason="too_deep")
        event_type = str(event.type)  # a member's value, for an EventKind member
        _route({"type": event_type, "return": {"id": event.return_.id}})
        order_id, order_name = _order(event)
        return Incoming(
            type=event_type,
            subject=event.return_id,
            key=event_key(body, store),
            body=body,
            store=store,
            order_id=order_id,
            order_name=order_name,
        )
    try:
        raw = parse_json(body)
    except ValueError as exc:  # orjson's JSONDecodeError among them
        raise MalformedBody(f"body is not strict JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedBody(
            f"body is a JSON {type(raw).__name__}, expected an object", reason="not_an_object"
        )
    if value_deeper_than(raw, max_depth):
        raise MalformedBody(f"JSON nested deeper than {max_depth}", reason="too_deep")
    _route(raw)
    key = event_key(body, store)
    try:
        mended = decode_event(body, raw, key=key, store=store)
    except UnroutableEvent as exc:  # after _route, only a shape the mends cannot reach
        raise UnprocessableEvent(str(exc), errors=[{"loc": "body", "msg": str(exc)}]) from None
    order_id, order_name = _order(mended)
    return Incoming(
        type=str(mended.type),
        subject=mended.return_id,
        key=key,
        body=body,
        schema_errors=mended.schema_errors,
        store=store,
        order_id=order_id,
        order_name=order_name,
    )


def _order(event: ReturnEvent) -> tuple[str, str]:
    """The order's id and name as the run log indexes them: the event's top-level
    ``order``, else the return's own ``return.order`` (the spec requires neither)."""
    top, inside = event.order, event.return_.order
    order_id = (top.id if top is not None else None) or (inside.id if inside else None)
    name = (top.name if top is not None else None) or (inside.name if inside else None)
    return _searchable(order_id), _searchable(name)


#: The longest order id or name the run log indexes (a longer one is not searchable).
ORDER_CHARS = 200


def _searchable(value: str | None) -> str:
    """An order's id or name as the run log indexes it ('' : not indexed)."""
    return value if value and len(value) <= ORDER_CHARS else ""


def _route(raw: dict[str, Any]) -> None:
    """``type`` and ``return.id`` must each be a non-empty JSON string, as sent.

    Checked on the raw JSON: ``"type": 1`` must not be routed as ``return.1``.
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
    if wrong:
        detail = "the event lacks what routing needs (type, return.id)"
        raise UnprocessableEvent(detail, errors=wrong)
