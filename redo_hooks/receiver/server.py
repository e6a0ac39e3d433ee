"""How ``redo-hooks serve`` runs uvicorn: limits that keep slow clients from holding it.

uvicorn bounds idle keep-alive connections but not a request whose headers
never finish (a "slowloris"): :class:`GuardedProtocol` closes a connection
whose request headers are not complete ``header_timeout`` seconds after the
connection opened or the request began. A body that trickles is the app's to
bound (``Settings.body_timeout``: 408), a body announced larger than
``max_body_bytes`` is refused before it is read (413), and
``limit_concurrency`` caps what all of them together can hold.
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..logs import get_logger

log = get_logger("redo_hooks.receiver.server")


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's headers."""

    header_timeout: float = 10.0
    _header_timer: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        """A request begins (on a kept-alive connection too): its headers are timed."""
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        """Headers in time: the app takes over (and bounds the body itself)."""
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing left to time."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        client = "%s:%d" % self.client if self.client else "?"  # noqa: UP031
        log.info("request_rejected", reason="headers_too_slow", client=client)
        self.transport.close()


def guarded_protocol(header_timeout: float) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` class with this header deadline (uvicorn takes a class)."""
    return type("GuardedProtocol", (GuardedProtocol,), {"header_timeout": header_timeout})


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The limits ``redo-hooks serve`` gives uvicorn (each a ``serve`` option)."""

    header_timeout: float = 10.0
    keep_alive: int = 5
    limit_concurrency: int = 2048
    graceful_shutdown: int = 30
    backlog: int = 2048

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.run``."""
        return {
            "http": guarded_protocol(self.header_timeout),
            "timeout_keep_alive": self.keep_alive,
            "limit_concurrency": self.limit_concurrency,
            "timeout_graceful_shutdown": self.graceful_shutdown,
            "backlog": self.backlog,
            "log_config": None,  # keep our logging configuration
            "access_log": False,
            "server_header": False,
        }
