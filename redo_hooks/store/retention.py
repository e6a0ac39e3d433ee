"""Housekeeping that worker maintenance does: trimming and indexing.

What the retention leaves behind: nothing, once it ends.

Stored events expire on their own (their hash has a TTL once every lane is
done with it; the dedupe mark has ``dedupe_ttl``). The replay index
``<p>:events`` is one sorted set, so its members are trimmed instead: by the
ingest script on every call, and here by worker maintenance, so a receiver
that stops receiving leaves no index behind either.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from redis import Redis

from . import lua, runlog
from .keys import Keys
from .replies import as_bytes


def trim_replay_index(connection: Redis, keys: Keys, retention: int) -> int:
    """Drop index entries older than ``retention`` seconds; how many from the replay index.

    The run log's indexes by outcome are trimmed too (their names
    are known: no key is scanned for). Times are Redis' own (``TIME``), as
    the ingest script's are.
    """
    seconds, micros = connection.time()
    cutoff = seconds + micros / 1e6 - retention
    with connection.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(keys.events, "-inf", cutoff)
        for outcome in runlog.INDEXED:
            pipe.zremrangebyscore(keys.by_outcome(outcome), "-inf", cutoff)
        return int(pipe.execute()[0])


def parked_letters(
    connection: Redis, keys: Keys, page: int = 500
) -> Iterator[tuple[bytes | str, float]]:
    """(id, dead_at) of each parked dead letter, read from the records a page at a time.

    The slow way, reading every record: for the letters parked before
    ``<p>:dead:parked`` existed.
    """
    for dead_id, record in connection.hscan_iter(keys.dead, count=page):
        data = orjson.loads(as_bytes(record))
        if data.get("parked"):
            yield dead_id, float(data.get("dead_at", 0))


def index_parked_letters(connection: Redis, keys: Keys, page: int = 500) -> int:
    """Index the letters parked before ``<p>:dead:parked`` existed, once; how many.

    Reads the registry a page per round trip. Lanes parked since are indexed
    by ``lane_park.lua`` itself; ``status`` counts the index once this ran.
    """
    if connection.exists(keys.parked_indexed):
        return 0
    script = connection.register_script(lua.source("parked_index"))
    added = 0
    found: list[bytes | str | float] = []
    for dead_id, dead_at in parked_letters(connection, keys, page):
        found += [dead_id, dead_at]
        if len(found) >= 2 * page:
            added += int(script(keys=[keys.dead, keys.parked], args=found))
            found = []
    if found:
        added += int(script(keys=[keys.dead, keys.parked], args=found))
    connection.set(keys.parked_indexed, 1)
    return added
