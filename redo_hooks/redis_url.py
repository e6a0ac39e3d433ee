"""Redis URLs: what ``redis_url`` may say, parsed, and masked for logs.

Pure (no client, no I/O), so that :mod:`redo_hooks.settings` can check a
URL when settings load and :mod:`redo_hooks.store.connections` can build
clients from it, neither importing the other. ``redis://``, ``rediss://``
and ``unix://`` go to redis-py as they are; ``redis+sentinel://`` is ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError

SENTINEL_SCHEME = "redis+sentinel"
_PASSWORD = re.compile(r"^(?P<scheme>[a-z+]+://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SentinelURL:
        """Parse ``redis+sentinel://[:password@]h1:p1,h2:p2/service[/db]``."""
        parts = urlsplit(url)
        netloc = parts.netloc
        password = None
        if "@" in netloc:
            credentials, netloc = netloc.rsplit("@", 1)
            password = unquote(credentials.partition(":")[2]) or None
        sentinels = []
        for node in netloc.split(","):
            host, _, port = node.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigurationError(
                    f"redis_url: Sentinel address {node!r} is not host:port "
                    "(redis+sentinel://host1:26379,host2:26379/service/0)"
                )
            sentinels.append((host, int(port)))
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ConfigurationError(
                "redis_url: a Sentinel URL names the service and optionally the db: "
                "redis+sentinel://host1:26379,host2:26379/mymaster/0"
            )
        return cls(tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0, password)


def is_sentinel(url: str) -> bool:
    """Whether ``url`` is a ``redis+sentinel://`` URL."""
    return url.startswith(SENTINEL_SCHEME + "://")


def mask(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return _PASSWORD.sub(r"\g<scheme>\g<user>:***@", url, count=1)
