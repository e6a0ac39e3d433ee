"""Typed webhook subscriptions, as Redo's API reads and writes them.

Tolerant in the same way as the event models: unknown fields are kept, enums
are plain strings. Two defects of Redo's spec (``spec/redo-openapi.yaml``) are
handled here rather than trusted:

* ``webhook-read.required`` lists ``"externalId id"`` (two names run
  together), so the spec requires neither. We require ``id`` (a subscription
  without one cannot be managed) and treat ``externalId`` as optional.
* ``callback.auth`` is ``oneOf [bearer object, null]``: a webhook read back
  may carry no auth at all, or a ``bearer`` without a token.

The bearer token is a ``SecretStr``: it never shows in ``repr()`` or logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class Bearer(_Model):
    """``callback.auth.bearer``: the token Redo sends as ``Authorization: Bearer``."""

    token: SecretStr | None = None


class CallbackAuth(_Model):
    """``callback.auth``."""

    bearer: Bearer | None = None


class Callback(_Model):
    """Where Redo POSTs events, and with which bearer token."""

    url: str
    auth: CallbackAuth | None = None

    @classmethod
    def bearer(cls, url: str, token: str) -> Callback:
        """A callback to ``url`` authorised by ``token``."""
        return cls(url=url, auth=CallbackAuth(bearer=Bearer(token=SecretStr(token))))

    @property
    def token(self) -> SecretStr | None:
        """The bearer token, if Redo returned one."""
        if self.auth is None or self.auth.bearer is None:
            return None
        return self.auth.bearer.token

    def to_api(self) -> dict[str, Any]:
        """The JSON Redo expects, the token in clear (only ever sent to Redo)."""
        token = self.token
        auth = None if token is None else {"bearer": {"token": token.get_secret_value()}}
        return {"url": self.url, "auth": auth}


class Webhook(_Model):
    """A webhook subscription (``webhook-read.schema``)."""

    id: str
    callback: Callback
    topic: str = "return"
    kind: str | None = None
    external_id: str | None = Field(default=None, alias="externalId")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields for display; the token only as whether one is set."""
        return {
            "id": self.id,
            "url": self.callback.url,
            "topic": self.topic,
            "kind": self.kind,
            "externalId": self.external_id,
            "hasToken": self.callback.token is not None,
            "createdAt": None if self.created_at is None else self.created_at.isoformat(),
            "updatedAt": None if self.updated_at is None else self.updated_at.isoformat(),
        }
