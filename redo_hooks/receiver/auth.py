"""Bearer verification: constant time, several secrets, labelled by store.

Redo sends ``Authorization: Bearer <secret>`` where the subscriber chose the
secret (spec ``info.description``). Each accepted secret may carry the store
it belongs to — ``store-a=tok1,store-b=tok2,tok3`` — and the store of the
secret that matched is what handlers see as ``event.store``: the body itself
does not say which store sent it. Several secrets per store are what make
rotation possible with no downtime: add the new one, switch the subscription,
then drop the old one.

Platforms with thousands of stores pass a *resolver* instead (or as well): an
async function from a presented token to its store (or ``None``), asked only
when no configured secret matched, its answers cached by
:class:`CachedResolver`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pydantic import SecretStr

from ..errors import ConfigurationError, StoreUnavailable, Unauthorized
from ..logs import get_logger

log = get_logger("redo_hooks.receiver.auth")

#: ``async def resolve(token: str) -> str | None``: the store a token belongs to.
SecretResolver = Callable[[str], Awaitable[str | None]]

_LABEL = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SecretEntry:
    """One accepted secret and the store it is labelled with (``None``: unlabelled)."""

    store: str | None
    token: bytes

    def __repr__(self) -> str:
        return f"SecretEntry(store={self.store!r}, token=<hidden>)"


def parse_entry(entry: str) -> SecretEntry:
    """``store=token`` or ``token``. A token ending in ``=`` padding stays whole.

    A secret that itself contains ``=`` elsewhere must be given with a label.
    """
    label, sep, token = entry.partition("=")
    if sep and _LABEL.match(label) and token.strip("="):
        return SecretEntry(label, token.encode())
    return SecretEntry(None, entry.encode())


def first_token(secrets: Iterable[SecretStr | str]) -> str:
    """The token of the first configured secret, without its store label ('' if none)."""
    for secret in secrets:
        return parse_entry(_reveal(secret)).token.decode()
    return ""


def _reveal(secret: SecretStr | str) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def new_secret() -> str:
    """A strong receiver secret: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


#: Shortest secret that passes without a warning.
MIN_SECRET_LENGTH = 16
#: Fewest bits of (Shannon) entropy, estimated from its characters, a secret should carry.
MIN_SECRET_BITS = 64


def weakness(token: bytes) -> str | None:
    """Why a secret is weak (too short, too few distinct characters), or ``None``.

    An estimate from the secret alone: its length times the Shannon entropy of
    its characters. ``redo-hooks secret`` makes ones with 256 random bits.
    """
    if len(token) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    counts = Counter(token)
    per_char = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    if per_char * len(token) < MIN_SECRET_BITS:
        return f"about {per_char * len(token):.0f} bits of entropy, under {MIN_SECRET_BITS}"
    return None


def bearer_token(authorization: bytes | None) -> bytes:
    """The token of an ``Authorization: Bearer`` header; ``Unauthorized`` otherwise."""
    if not authorization:
        raise Unauthorized("missing Authorization header", reason="missing_bearer")
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        raise Unauthorized("Authorization is not a Bearer token", reason="malformed_bearer")
    return token.strip()


class BearerVerifier:
    """Checks an ``Authorization`` header against the configured secrets."""

    __slots__ = ("_entries",)

    def __init__(self, secrets: Iterable[SecretStr | str], *, allow_empty: bool = False) -> None:
        values = [_reveal(s) for s in secrets]
        if not values and not allow_empty:
            raise ConfigurationError(
                "no secret configured: set REDO_HOOKS_SECRETS (comma-separated, "
                "optionally store=secret) or pass secrets=[...] to RedoHooks"
            )
        self._entries = tuple(parse_entry(v) for v in values)

    def __repr__(self) -> str:
        return f"BearerVerifier(<{len(self._entries)} secret(s)>)"

    def weak(self) -> list[tuple[int, str | None, str]]:
        """(position, store, why) of each configured secret that looks weak."""
        found = []
        for index, entry in enumerate(self._entries):
            why = weakness(entry.token)
            if why is not None:
                found.append((index, entry.store, why))
        return found

    def match(self, token: bytes) -> SecretEntry | None:
        """The entry whose secret is ``token``, comparing with all of them."""
        found = None
        # No early exit: the time taken does not tell which secret (or how
        # many) exist.
        for entry in self._entries:
            if hmac.compare_digest(token, entry.token):
                found = entry
        return found

    def verify(self, authorization: bytes | None) -> str | None:
        """The store of the matching secret (``None`` if unlabelled); raise ``Unauthorized``."""
        token = bearer_token(authorization)
        entry = self.match(token)
        if entry is None:
            raise self.refusal(token)
        return entry.store

    def refusal(self, token: bytes) -> Unauthorized:
        """The error for an unknown ``token``; it names a labelled entry sent whole.

        ``store=secret`` is how ``REDO_HOOKS_SECRETS`` labels a secret, not what
        the sender presents: a bearer of that form whose secret is configured
        gets a 401 that says to send the secret alone. Whoever sent it holds the
        secret already, so saying so tells them nothing new.
        """
        label, equals, secret = token.partition(b"=")
        if equals and label and secret and self.match(secret) is not None:
            return Unauthorized(
                "the bearer is a REDO_HOOKS_SECRETS entry (store=secret): send only "
                "the secret after '=', the store is known from it",
                reason="labelled_bearer",
            )
        return Unauthorized("unknown bearer secret", reason="wrong_bearer")


class CachedResolver:
    """A :data:`SecretResolver` behind a small cache, with one lookup per token at a time.

    Known tokens are remembered ``ttl`` seconds (so revoking a secret in your
    database takes effect within ``ttl``); unknown ones ``min(ttl, 5)``
    seconds, which spares your database a flood of wrong guesses. A resolver
    that raises or exceeds ``timeout`` makes the request a 503 (Redo retries),
    never a 401: a failing database is not a wrong secret.
    """

    def __init__(
        self,
        resolve: SecretResolver,
        *,
        ttl: float = 60.0,
        timeout: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self.ttl = ttl
        self.negative_ttl = min(ttl, 5.0)
        self.timeout = timeout
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[float, str | None]] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[str | None]] = {}

    def __repr__(self) -> str:
        return f"CachedResolver({self._resolve!r}, ttl={self.ttl})"

    async def store_for(self, token: bytes) -> str | None:
        """The store of ``token``, or ``None`` if the resolver does not know it."""
        digest = hashlib.sha256(token).digest()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            self._cache.move_to_end(digest)
            return cached[1]
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            store = await self._lookup(token)
        except StoreUnavailable as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[digest]
        future.set_result(store)
        life = self.ttl if store is not None else self.negative_ttl
        self._cache[digest] = (self._clock() + life, store)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return store

    async def _lookup(self, token: bytes) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                store = await self._resolve(token.decode("utf-8", "replace"))
        except TimeoutError:
            log.error("secret_resolver_failed", error="timeout", timeout=self.timeout)
            raise StoreUnavailable("the secret resolver did not answer in time") from None
        except Exception as exc:
            log.error("secret_resolver_failed", error=type(exc).__name__)
            raise StoreUnavailable("the secret resolver failed") from None
        if store is not None and not isinstance(store, str):
            log.error("secret_resolver_failed", error=f"returned a {type(store).__name__}")
            raise StoreUnavailable("the secret resolver failed")
        return store or None


class Authenticator:
    """Configured secrets first, then the resolver; the store label, or an error."""

    def __init__(self, verifier: BearerVerifier, resolver: CachedResolver | None) -> None:
        self.verifier = verifier
        self.resolver = resolver

    async def authenticate(self, authorization: bytes | None) -> str | None:
        """The store the request's secret belongs to (``None``: unlabelled secret)."""
        token = bearer_token(authorization)
        entry = self.verifier.match(token)
        if entry is not None:
            return entry.store
        if self.resolver is not None:
            store = await self.resolver.store_for(token)
            if store is not None:
                return store
        raise self.verifier.refusal(token)
