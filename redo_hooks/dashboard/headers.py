"""What every dashboard response carries, and which hosts it answers for.

The pages show customers' names and addresses, so every response says:
no script and nothing from elsewhere (``Content-Security-Policy``), never
in a frame of another site, never cached (``Cache-Control: no-store``), no
referrer to the next site. Served without tokens (``--no-token``, loopback
only), it also checks the ``Host`` header: a web page could otherwise point
a DNS name it controls at 127.0.0.1 ("DNS rebinding") and read the pages,
with their CSRF token, as if it were this machine.
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
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if not is_loopback(host_name(host)):
                await _refuse(send, host)
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


async def _refuse(send: Any, host: str) -> None:
    body = (
        f"421: served without a token, this dashboard answers only for 127.0.0.1 or "
        f"localhost, not {host!r}"
    ).encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS]
    await send({"type": "http.response.start", "status": 421, "headers": headers})
    await send({"type": "http.response.body", "body": body})
