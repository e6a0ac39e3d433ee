"""An event as the receiver hands it to Redis, and as Redis hands it back.

``Incoming`` is what routing and storage need of a webhook body; the body is
kept as received (the dedupe key is its hash) and stored compressed
(:mod:`redo_hooks.store.compression`), in a key of its own beside the event's
hash (:mod:`redo_hooks.store.keys`). No I/O but :func:`load_stored`'s one
round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from .compression import compress, decompress
from .keys import Keys
from .replies import as_bytes, text


@dataclass(frozen=True, slots=True)
class Incoming:
    """A body that can be routed: its type, subject, dedupe key and bytes.

    The validated model itself is not kept: the receiver only routes and
    stores bytes, and holding every in-flight request's object graph until
    Redis answers made the garbage collector the receiver's largest cost.
    Workers decode the body again when they build the event for a handler.
    """

    type: str
    subject: str
    key: str
    body: bytes
    schema_errors: list[str] = field(default_factory=list)
    #: The store whose secret authenticated the request (``None``: unlabelled).
    store: str | None = None
    #: The W3C ``traceparent`` of the request's span, when it was traced ('' if not).
    traceparent: str = ""
    #: The order's id and name (``#1001``), for the run log's search ('' if none).
    order_id: str = ""
    order_name: str = ""

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


#: The fields of a stored event hash that make it an ``Incoming`` again, with
#: its body (in a key of its own, ``Keys.body``).
STORED_FIELDS = ("type", "subject", "store", "tp")


def pack_body(body: bytes) -> bytes:
    """A body as stored in Redis."""
    return compress(body)


def unpack_body(stored: Any) -> bytes:
    """A body as received, from its stored form."""
    return decompress(as_bytes(stored))


def load_stored(connection: Redis, keys: Keys, key: str) -> Incoming | None:
    """The stored event ``key``, body and all, in one round trip; ``None`` once it is gone."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.event(key), STORED_FIELDS)
        pipe.get(keys.body(key))
        fields, body = pipe.execute()
    return incoming_from_stored(key, fields, body)


def incoming_from_stored(key: str, stored: Sequence[Any], body: Any) -> Incoming | None:
    """The event an ``HMGET <event> type subject store tp`` reply and its body hold.

    ``body``: the body key's value. ``None`` if the event is gone.
    """
    event_type, subject, store, traceparent = stored
    if body is None or event_type is None:
        return None
    return Incoming(
        type=text(event_type),
        subject=text(subject),
        key=key,
        body=unpack_body(body),
        store=(text(store) or None) if store is not None else None,
        traceparent=text(traceparent) if traceparent is not None else "",
    )
