"""What every dashboard response carries, and which hosts it answers for.

The pages show customers' names and addresses, so every response says:
no script and nothing from elsewhere (``Content-Security-Policy``), never
in a frame of another site, never cached (``Cache-Control: no-store``), no
referrer to the next site. Served without tokens (``--no-token``, loopback
only), it also checks the ``Host`` header: a web page could otherwise point
a DNS name it controls at 127.0.0.1 ("DNS rebinding") and read the pages,
with their CSRF token, as if it were this machine; and a POST must come
from a page of this machine (its ``Origin``), not from a form elsewhere.
"""

from __future__ import annotations

from typing import Any

from .auth import is_loopback

#: No script at all; styles from the stylesheet (and the login page's own).
POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8001`` -> ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Protect:
    """ASGI middleware: the headers above on every response; loopback hosts only if told."""

    def __init__(self, app: Any, *, loopback_hosts_only: bool) -> None:
        self.app = app
        self.loopback_hosts_only = loopback_hosts_only

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.loopback_hosts_only:
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            if not is_loopback(host_name(host)):
                await _refuse(send, 421, f"only for 127.0.0.1 or localhost, not {host!r}")
                return
            origin = headers.get(b"origin")
            if scope["method"] == "POST" and origin is not None and not _loopback_origin(origin):
                # A page of another site posting here: its browser sends its Origin.
                await _refuse(send, 403, f"no form from {origin.decode('latin-1')!r}")
                return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in HEADERS if name not in present),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def _loopback_origin(origin: bytes) -> bool:
    """Whether an ``Origin`` header names a page of this machine (``null`` does not)."""
    scheme, _, rest = origin.decode("latin-1").partition("://")
    return scheme in ("http", "https") and is_loopback(host_name(rest))


async def _refuse(send: Any, status: int, why: str) -> None:
    body = f"{status}: served without a token, this dashboard answers {why}".encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
