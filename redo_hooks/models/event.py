"""The webhook body: ``webhooks: return:`` in Redo's OpenAPI spec.

``{type, at, merchantName, return, order}``. Only ``type`` and ``return.id``
are required, because they are what routing and ordering need; everything else
is as tolerant as the rest of the models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, PrivateAttr

from .base import RedoModel
from .enums import OpenEventKind
from .order import Order
from .return_ import Return


class ReturnEvent(RedoModel):
    """One delivery of Redo's return webhook, as handlers receive it.

    ``subject`` is the return id (events are ordered per subject), ``key`` the
    stable event key used for dedupe (the same for every redelivery of the
    same event: use it to make handlers idempotent), ``store`` the store whose
    secret it came with, ``raw`` the parsed JSON exactly as sent, unknown
    fields included.
    """

    type: OpenEventKind
    at: datetime | None = None
    merchant_name: str | None = None
    return_: Return = Field(alias="return")
    order: Order | None = None

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)
    _key: str = PrivateAttr(default="")
    _store: str | None = PrivateAttr(default=None)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], key: str = "", store: str | None = None) -> ReturnEvent:
        """Validate a parsed body; raises ``pydantic.ValidationError``."""
        event = cls.model_validate(raw)
        event._raw = raw
        event._key = key
        event._store = store
        return event

    @property
    def subject(self) -> str:
        """The return id: the unit of ordering."""
        return self.return_.id

    @property
    def name(self) -> str:
        """The routing name, e.g. ``"return.created"``."""
        return f"return.{self.type}"

    @property
    def key(self) -> str:
        """Stable event key (the dedupe key): equal for every redelivery."""
        return self._key

    @property
    def store(self) -> str | None:
        """The store that sent the event: the label of the secret it came with.

        ``None`` when that secret is unlabelled (``REDO_HOOKS_SECRETS=tok``
        rather than ``store-a=tok``). The body itself does not name its store.
        """
        return self._store

    @property
    def raw(self) -> dict[str, Any]:
        """The body as parsed JSON, with every field Redo sent."""
        return self._raw

    @property
    def updated_at(self) -> datetime | None:
        """``return.updatedAt``: compare it to skip stale snapshots."""
        return self.return_.updated_at
