"""An event as the receiver hands it to Redis, and as Redis hands it back.

``Incoming`` is what routing and storage need of a webhook body; the body is
kept as received (the dedupe key is its hash) and stored zlib-compressed.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .replies import as_bytes, text


@dataclass(frozen=True, slots=True)
class Incoming:
    """A body that can be routed: its type, subject, dedupe key and bytes.

    The validated model itself is not kept: the receiver only routes and
    stores bytes, and holding every in-flight request's object graph until
    Redis answers made the garbage collector the receiver's largest cost.
    Workers validate again when they build the event for a handler.
    """

    type: str
    subject: str
    key: str
    body: bytes
    schema_errors: list[str] = field(default_factory=list)
    #: The store whose secret authenticated the request (``None``: unlabelled).
    store: str | None = None

    @property
    def name(self) -> str:
        """Routing name, e.g. ``"return.created"``."""
        return f"return.{self.type}"


def event_key(body: bytes, store: str | None = None) -> str:
    """The dedupe key of a body: Redo redelivers the same bytes on retry.

    Bodies from different stores never count as duplicates of each other.
    """
    digest = hashlib.sha256()
    if store is not None:
        digest.update(store.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()[:32]


# Bodies are stored zlib-compressed: level 1 costs ~40 µs per 4.6 KB event
# and keeps ~37% of it, which matters with days of retention in Redis.
BODY_COMPRESSION = 1


#: The fields of a stored event hash that make it an ``Incoming`` again.
STORED_FIELDS = ("body", "type", "subject", "store")


def pack_body(body: bytes) -> bytes:
    """A body as stored in Redis."""
    return zlib.compress(body, BODY_COMPRESSION)


def unpack_body(stored: Any) -> bytes:
    """A body as received, from its stored form."""
    return zlib.decompress(as_bytes(stored))


def incoming_from_stored(key: str, stored: Sequence[Any]) -> Incoming | None:
    """The event an ``HMGET <event> body type subject store`` reply holds; None if it is gone."""
    body, event_type, subject, store = stored
    if body is None:
        return None
    return Incoming(
        type=text(event_type),
        subject=text(subject),
        key=key,
        body=unpack_body(body),
        store=(text(store) or None) if store is not None else None,
    )


# What orjson refuses that RFC 8259's grammar allows (it lets implementations
# limit the rest): a lone UTF-16 surrogate escape, which a JavaScript sender
# emits when it cuts a string mid-emoji, and a number beyond a double's range.
# Refusing either is a 4xx, and Redo never retries a 4xx: the event is lost.
_GRAMMATICAL = ("surrogate", "infinity when parsed")


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``: strict RFC 8259, by orjson, with the grammar's own leeway.

    A lone surrogate escape (``"\\ud83d"``) is read as U+FFFD and a number
    beyond a double's range as infinity, instead of refused; the bytes are
    stored as received. Still refused: invalid UTF-8, trailing data and the
    ``NaN``/``Infinity`` literals (``ValueError``; orjson's is one).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not any(reason in str(exc) for reason in _GRAMMATICAL):
            raise
    # Rare: the standard library reads these; invalid UTF-8 stays refused.
    value = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    return _without_lone_surrogates(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value
