"""Redis clients from ``redis_url``: a plain server, or a primary found through Sentinel.

``redis://[:password@]host:port/db`` (and ``rediss://``, ``unix://``) is a
plain server. ``redis+sentinel://[:password@]host1:port1,host2:port2/service/db``
asks the Sentinels listed for the current primary of ``service``; the client
asks them again whenever its connection to the primary fails, so receivers
and workers follow a failover by themselves (a request in flight during the
switch gets a 503, a worker retries). The password, if any, is the data
nodes'; Sentinels are reached without one. Every Redis client redo-hooks
makes comes from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from ..errors import ConfigurationError

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


def redis_client(url: str, **options: Any) -> Redis:
    """A synchronous client for ``url`` (``options`` as for ``redis.Redis``)."""
    if not is_sentinel(url):
        return Redis.from_url(url, **options)
    parsed = SentinelURL.parse(url)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call, unused-ignore]
    client: Redis = sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]
        parsed.service, db=parsed.db, password=parsed.password, **options
    )
    return client


def async_redis_client(url: str, **options: Any) -> AsyncRedis:
    """An asyncio client for ``url`` (``options`` as for ``redis.asyncio.Redis``)."""
    if not is_sentinel(url):
        return AsyncRedis.from_url(url, **options)
    parsed = SentinelURL.parse(url)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = AsyncSentinel(  # type: ignore[no-untyped-call, unused-ignore]
        list(parsed.sentinels), sentinel_kwargs=timeouts
    )
    client: AsyncRedis = sentinel.master_for(
        parsed.service, db=parsed.db, password=parsed.password, **options
    )
    return client


def mask(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return _PASSWORD.sub(r"\g<scheme>\g<user>:***@", url, count=1)


def server_time(connection: Redis) -> float:
    """Redis' own clock (``TIME``), in epoch seconds: the one every process agrees on."""
    seconds, micros = connection.time()
    return float(seconds) + float(micros) / 1e6
