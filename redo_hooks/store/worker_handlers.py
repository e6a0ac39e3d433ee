"""Which handlers each worker process has: for ``redo-hooks doctor`` to compare.

A worker process writes its handler names to ``<p>:worker-handlers``
(field ``<hostname>:<pid>``) when it starts, and removes them when it
stops. A process that died leaves its field behind: readers keep only the
processes RQ's worker registry still lists, and each start removes the
fields of processes that registry no longer lists.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

import orjson
from redis import Redis

from .keys import Keys
from .replies import text


def process_name() -> str:
    """This process as the field names it: ``<hostname>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def publish(connection: Redis, keys: Keys, handlers: Iterable[str], live: set[str]) -> None:
    """Record this process's handlers; forget processes not in ``live`` (``host:pid``)."""
    name = process_name()
    stale = [f for f in (text(f) for f in connection.hkeys(keys.worker_handlers)) if f not in live]
    with connection.pipeline(transaction=False) as pipe:
        if stale:
            pipe.hdel(keys.worker_handlers, *[f for f in stale if f != name])
        pipe.hset(keys.worker_handlers, name, orjson.dumps(sorted(handlers)))
        pipe.execute()


def unpublish(connection: Redis, keys: Keys) -> None:
    """Forget this process's handlers (it stops)."""
    connection.hdel(keys.worker_handlers, process_name())


def published(connection: Redis, keys: Keys) -> dict[str, list[str]]:
    """``host:pid`` -> handler names, of every process that recorded them."""
    found = connection.hgetall(keys.worker_handlers)
    return {text(k): list(orjson.loads(v)) for k, v in found.items()}
