"""What the retention leaves behind: nothing, once it ends.

Stored events expire on their own (their hash has a TTL once every lane is
done with it; the dedupe mark has ``dedupe_ttl``). The replay index
``<p>:events`` is one sorted set, so its members are trimmed instead: by the
ingest script on every call, and here by worker maintenance, so a receiver
that stops receiving leaves no index behind either.
"""

from __future__ import annotations

from redis import Redis

from .keys import Keys


def trim_replay_index(connection: Redis, keys: Keys, retention: int) -> int:
    """Drop index entries received more than ``retention`` seconds ago; how many.

    Times are Redis' own (``TIME``), as the ingest script's are.
    """
    seconds, micros = connection.time()
    cutoff = seconds + micros / 1e6 - retention
    return int(connection.zremrangebyscore(keys.events, "-inf", cutoff))
