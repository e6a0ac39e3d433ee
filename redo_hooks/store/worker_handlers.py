"""Which handlers each worker process has: for ``redo-hooks doctor`` to compare.

A worker process writes its handler names to ``<p>:worker-handlers``
(field ``<hostname>:<pid>``, with when) when it starts, and removes them
when it stops. A process that died leaves its field behind: readers keep
only the processes RQ's worker registry still lists, and each start removes
the fields of processes that registry no longer lists and that are older
than ``STALE_AFTER`` (a process starting beside it may not be registered yet).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable

import orjson
from redis import Redis

from .keys import Keys
from .replies import text


def process_name() -> str:
    """This process as the field names it: ``<hostname>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: Seconds after which a recorded process that RQ no longer lists is forgotten.
STALE_AFTER = 600.0


def publish(connection: Redis, keys: Keys, handlers: Iterable[str], live: set[str]) -> None:
    """Record this process's handlers; forget old records of processes not in ``live``."""
    name, now = process_name(), time.time()
    stale = [
        process
        for process, (at, _) in _records(connection, keys).items()
        if process not in live and process != name and now - at > STALE_AFTER
    ]
    with connection.pipeline(transaction=False) as pipe:
        if stale:
            pipe.hdel(keys.worker_handlers, *stale)
        record = {"at": now, "handlers": sorted(handlers)}
        pipe.hset(keys.worker_handlers, name, orjson.dumps(record))
        pipe.execute()


def unpublish(connection: Redis, keys: Keys) -> None:
    """Forget this process's handlers (it stops)."""
    connection.hdel(keys.worker_handlers, process_name())


def published(connection: Redis, keys: Keys) -> dict[str, list[str]]:
    """``host:pid`` -> handler names, of every process that recorded them."""
    return {process: handlers for process, (_, handlers) in _records(connection, keys).items()}


def _records(connection: Redis, keys: Keys) -> dict[str, tuple[float, list[str]]]:
    found = {}
    for field, value in connection.hgetall(keys.worker_handlers).items():
        record = orjson.loads(value)
        found[text(field)] = (float(record["at"]), list(record["handlers"]))
    return found
