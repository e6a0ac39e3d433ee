"""The webhook body: ``webhooks: return:`` in Redo's OpenAPI spec.

``{type, at, merchantName, return, order}``. Only ``type`` and ``return.id``
are required, because they are what routing and ordering need; everything else
is as tolerant as the rest of the models. Build one with
:func:`redo_hooks.models.decode_event` (or :meth:`ReturnEvent.from_raw`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec

from ..errors import deprecated
from .base import EnumFields, RedoModel, open_members
from .enums import EventKind
from .jsontext import parse_json
from .order import Order
from .return_ import Return
from .tolerance import TolerantDecoder


class ReturnEvent(RedoModel, frozen=True, dict=True, gc=True):
    """One delivery of Redo's return webhook, as handlers receive it.

    ``type`` is the body's own field (``"created"``, an :class:`EventKind`),
    ``name`` the event's name everywhere else (``"return.created"``: routing,
    filters, subscriptions). ``return_id`` is the return's id (events are
    ordered per return), ``key`` the stable event key used for dedupe (the
    same for every redelivery of the same event: use it to make handlers
    idempotent), ``store`` the store whose secret it came with, ``raw`` the
    parsed JSON exactly as sent, unknown fields included, ``schema_errors``
    what did not fit the models, and :meth:`to_dict` all of it as plain data.
    """

    type: str  # EventKind
    return_: Return
    at: datetime | None = None
    merchant_name: str | None = None
    order: Order | None = None

    #: Open enums: a known value becomes its member (see ``open_members``).
    _enums: ClassVar[EnumFields] = {"type": EventKind}

    def __post_init__(self) -> None:
        open_members(self)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], key: str = "", store: str | None = None) -> ReturnEvent:
        """Decode a parsed body, tolerantly; ``UnroutableEvent`` without ``type``/``return.id``."""
        return decode_event(None, raw, key=key, store=store)

    def _attach(
        self, body: bytes | None, raw: Any, key: str, store: str | None, errors: list[str]
    ) -> ReturnEvent:
        """Record what the body does not say (its key, store, errors); return ``self``."""
        # ``dict=True`` gives the struct a __dict__ beside its fields: these
        # live there, so a body's own "key" or "store" field can never set them.
        extra = self.__dict__
        extra["_body"] = body
        extra["_raw"] = raw
        extra["_key"] = key
        extra["_store"] = store
        extra["_schema_errors"] = errors
        return self

    @property
    def return_id(self) -> str:
        """The return's id (``return.id``): events are ordered per return."""
        return self.return_.id

    @property
    def subject(self) -> str:
        """Deprecated: :attr:`return_id`."""
        deprecated("ReturnEvent.subject", "ReturnEvent.return_id")
        return self.return_.id

    @property
    def name(self) -> str:
        """The event's name, e.g. ``"return.created"``: what handlers subscribe to."""
        return f"return.{self.type}"

    @property
    def key(self) -> str:
        """Stable event key (the dedupe key): equal for every redelivery."""
        return str(self.__dict__.get("_key", ""))

    @property
    def store(self) -> str | None:
        """The store that sent the event: the label of the secret it came with.

        ``None`` when that secret is unlabelled (``REDO_HOOKS_SECRETS=tok``
        rather than ``store-a=tok``). The body itself does not name its store.
        """
        store: str | None = self.__dict__.get("_store")
        return store

    @property
    def raw(self) -> dict[str, Any]:
        """The body as parsed JSON, with every field Redo sent (parsed on first use)."""
        extra = self.__dict__
        raw = extra.get("_raw")
        if raw is None:
            body = extra.get("_body")
            raw = parse_json(body) if body is not None else {}
            extra["_raw"] = raw
        return raw

    @property
    def schema_errors(self) -> list[str]:
        """Where the body did not fit the models: ``"<path>: <what was expected>"``.

        Each listed value reads as ``None`` on the model (a list element of the
        wrong shape is left out of the list) and is untouched in :attr:`raw`.
        Empty for an event that fits. Handlers registered with ``strict=True``
        never see an event with schema errors: it is dead-lettered instead.
        """
        errors: list[str] = self.__dict__.get("_schema_errors", [])
        return errors

    @property
    def updated_at(self) -> datetime | None:
        """``return.updatedAt``: compare it to skip stale snapshots."""
        return self.return_.updated_at

    def to_dict(self) -> dict[str, Any]:
        """The event as plain, JSON-able data: the body as the models read it, and more.

        The body's fields under Redo's own names (``type``, ``at``,
        ``merchantName``, ``return``, ``order``; money as decimal strings, times
        in ISO 8601, what did not fit as ``None``), then ``name``, ``key``,
        ``store`` and ``schema_errors``, which the body does not carry. Hand
        it to pydantic or FastAPI code with ``Model.model_validate(event.to_dict())``;
        for the body exactly as sent, unknown fields included, read :attr:`raw`.
        """
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["name"] = self.name
        data["key"] = self.key
        data["store"] = self.store
        data["schema_errors"] = list(self.schema_errors)
        return data


_DECODER = TolerantDecoder(ReturnEvent, required={("type",), ("return",), ("return", "id")})


def decode_event(
    body: bytes | None, raw: Any = None, *, key: str = "", store: str | None = None
) -> ReturnEvent:
    """The event in ``body`` (or in its parsed form ``raw``), decoded tolerantly.

    Straight from the bytes when the body fits the models; otherwise parsed and
    mended field by field (:mod:`redo_hooks.models.tolerance`), the mends listed
    in ``schema_errors``. ``raw`` is parsed from ``body`` only when needed.
    Raises ``UnroutableEvent`` when ``type`` or ``return.id`` is not a string,
    and ``ValueError`` when ``body`` is not JSON. Does not check that the
    routing strings are non-empty, nor the depth bound: the receiver does.
    """
    if body is not None and raw is None:
        event = decode_fitting(body)
        if event is not None:
            return event._attach(body, None, key, store, [])
        raw = parse_json(body)
    mended, errors = _DECODER.mend(raw)
    return mended._attach(body, raw, key, store, errors)


def decode_fitting(body: bytes) -> ReturnEvent | None:
    """The event in ``body`` if it fits the models exactly (the fast path), else ``None``.

    Without ``key``, ``store`` or ``raw``: :func:`decode_event` attaches those.
    """
    return _DECODER.decode(body)
