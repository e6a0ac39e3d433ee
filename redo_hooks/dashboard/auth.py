"""Who may see the dashboard and who may act on it: tokens, sessions, CSRF.

Pure: no I/O. Tokens come from ``REDO_HOOKS_DASHBOARD_TOKEN`` (separate from
the webhook secrets), each ``label=token`` (role ``read``) or
``admin:label=token`` (may also retry, drop and replay).

A browser logs in once with a token and gets a session cookie: a payload
(label, time of issue, a nonce) signed with HMAC-SHA256 keyed by *that
token*, so revoking a token ends its sessions and no other key has to be
kept. The role is looked up from the configured token on every request, so
demoting a token takes effect at once. The CSRF token of a session is the
HMAC of its nonce, also keyed by the token: a forged form has no way to it.
Scripts send ``Authorization: Bearer <token>`` instead, and need no CSRF
token (no browser sends that header on its own).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from ..errors import ConfigurationError

Role = Literal["read", "admin"]
MIN_TOKEN_CHARS = 16
#: A session lasts this long after login.
SESSION_SECONDS = 12 * 3600
COOKIE = "redo_hooks_session"


@dataclass(frozen=True, slots=True)
class Token:
    """One configured token."""

    label: str
    role: Role
    secret: str = ""

    def __repr__(self) -> str:  # never the secret
        return f"Token(label={self.label!r}, role={self.role!r})"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is making a request: a token's label and role, and the session's CSRF token."""

    label: str
    role: Role
    csrf: str = ""

    @property
    def admin(self) -> bool:
        """May retry, drop and replay."""
        return self.role == "admin"


def parse_tokens(entries: Sequence[str]) -> list[Token]:
    """Tokens from ``REDO_HOOKS_DASHBOARD_TOKEN`` entries; ``ConfigurationError`` if malformed."""
    tokens: list[Token] = []
    for n, entry in enumerate(entries, 1):
        head, eq, secret = entry.partition("=")
        if not eq or not secret.strip():
            raise ConfigurationError(
                f"dashboard token {n}: write it as label=token or admin:label=token"
            )
        role, colon, label = head.strip().rpartition(":")
        role = role.strip() if colon else "read"
        label = label.strip()
        if role not in ("read", "admin") or not label:
            raise ConfigurationError(
                f"dashboard token {n}: the role must be 'read' or 'admin' and the label "
                "non-empty (admin:label=token)"
            )
        if len(secret.strip()) < MIN_TOKEN_CHARS:
            raise ConfigurationError(
                f"dashboard token {label!r} is shorter than {MIN_TOKEN_CHARS} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if any(t.label == label for t in tokens):
            raise ConfigurationError(f"dashboard token label {label!r} is used twice")
        tokens.append(Token(label, role, secret.strip()))  # type: ignore[arg-type]
    return tokens


class Gate:
    """Checks bearer tokens and session cookies against the configured tokens."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = list(tokens)

    def bearer(self, presented: str) -> Viewer | None:
        """The viewer a presented token is, or ``None`` (compared in constant time)."""
        found = None
        for token in self.tokens:  # every token compared: no early exit to time
            if hmac.compare_digest(presented.encode(), token.secret.encode()):
                found = token
        return None if found is None else Viewer(found.label, found.role)

    def issue(self, token_label: str, now: float | None = None) -> str:
        """A session cookie value for the token labelled ``token_label``."""
        token = self._token(token_label)
        assert token is not None  # only called right after bearer() found it
        payload = orjson.dumps(
            {"l": token.label, "i": int(now or time.time()), "n": secrets.token_urlsafe(12)}
        )
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{_sign(token.secret, body)}"

    def session(self, cookie: str, now: float | None = None) -> Viewer | None:
        """The viewer a session cookie is, or ``None`` (forged, expired, or token revoked)."""
        body, dot, signature = cookie.partition(".")
        if not dot:
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            label, issued, nonce = str(data["l"]), float(data["i"]), str(data["n"])
        except (ValueError, KeyError, TypeError):
            return None
        token = self._token(label)
        # Bytes: compare_digest refuses a str with non-ASCII characters.
        signed = _sign(token.secret, body).encode() if token is not None else b""
        if token is None or not hmac.compare_digest(signature.encode(), signed):
            return None
        if (now or time.time()) - issued > SESSION_SECONDS:
            return None
        return Viewer(token.label, token.role, csrf=_sign(token.secret, "csrf:" + nonce)[:32])

    def _token(self, label: str) -> Token | None:
        return next((t for t in self.tokens if t.label == label), None)


def _sign(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only.

    An address, parsed: a name such as ``127.0.0.1.evil.example`` only starts
    like one, and could point anywhere (``localhost`` alone is a name taken
    as this machine).
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoginThrottle:
    """Failed logins per client: past ``attempts`` within ``window`` seconds, wait.

    Tokens are long and random, so guessing one is hopeless anyway; this
    keeps a script from trying, and the log quiet. In memory, per process
    (each replica counts its own), for at most ``clients`` clients: the one
    seen least recently is forgotten first.
    """

    def __init__(self, attempts: int = 10, window: float = 300.0, clients: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window
        self.clients = clients
        self._failures: dict[str, list[float]] = {}

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds ``client`` must wait before its next try (0: it may try now)."""
        now = time.time() if now is None else now
        recent = [t for t in self._failures.get(client, []) if t > now - self.window]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        if len(recent) < self.attempts:
            return 0.0
        return recent[-self.attempts] + self.window - now

    def failed(self, client: str, now: float | None = None) -> None:
        """Count a failed try of ``client``."""
        now = time.time() if now is None else now
        failures = self._failures.pop(client, [])  # re-inserted: most recently seen last
        self._failures[client] = [*failures[-(self.attempts - 1) :], now]
        while len(self._failures) > self.clients:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures."""
        self._failures.pop(client, None)
