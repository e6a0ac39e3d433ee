"""Bearer verification: pure, constant time, several accepted secrets.

Redo sends ``Authorization: Bearer <secret>`` where the subscriber chose the
secret (spec ``info.description``). Accepting several secrets at once is what
makes rotation possible with no downtime: add the new one, switch the
subscription, then drop the old one.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pydantic import SecretStr

from .errors import ConfigurationError, Unauthorized


class BearerVerifier:
    """Checks an ``Authorization`` header value against the accepted secrets."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[SecretStr | str]) -> None:
        values = [s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets]
        if not values:
            raise ConfigurationError(
                "no secret configured: set REDO_HOOKS_SECRETS (comma-separated) "
                "or pass secrets=[...] to RedoHooks"
            )
        self._secrets = tuple(v.encode() for v in values)

    def __repr__(self) -> str:
        return f"BearerVerifier(<{len(self._secrets)} secret(s)>)"

    def verify(self, authorization: bytes | None) -> None:
        """Return if the header carries an accepted secret; raise ``Unauthorized``."""
        if not authorization:
            raise Unauthorized("missing Authorization header", reason="missing_bearer")
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise Unauthorized("Authorization is not a Bearer token", reason="malformed_bearer")
        token = token.strip()
        matched = False
        # Compare with every secret, no early exit: the time taken does not
        # tell which secret (or how many) exist.
        for secret in self._secrets:
            matched |= hmac.compare_digest(token, secret)
        if not matched:
            raise Unauthorized("unknown bearer secret", reason="wrong_bearer")
