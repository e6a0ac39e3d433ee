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

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from ..redis_url import SentinelURL, is_sentinel


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


def server_time(connection: Redis) -> float:
    """Redis' own clock (``TIME``), in epoch seconds: the one every process agrees on."""
    seconds, micros = connection.time()
    return float(seconds) + float(micros) / 1e6
