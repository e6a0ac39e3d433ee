"""A worker process's counts, buffered in process and added to ``<p>:metrics`` in Redis.

Workers are many processes on many machines: instead of each exposing an
endpoint, they add their counts to one Redis hash about once a second, and
the receiver's ``/metrics`` (``ops/metrics.py``) reads it at scrape time.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from redis import Redis
from redis.exceptions import RedisError

from ..logs import get_logger

log = get_logger("redo_hooks.dispatch.counters")

#: Upper bounds (seconds) of the handler-duration histogram.
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Separator in the field names of the <p>:metrics hash: kind|handler[|detail].
SEP = "|"
#: The field counting worker processes the --concurrency parent started again.
RESPAWNS = f"respawns{SEP}"


class WorkerMetrics:
    """A worker process's counts, buffered and added to ``<p>:metrics`` in Redis."""

    def __init__(self, key: str, *, interval: float = 1.0) -> None:
        self.key = key
        self.interval = interval
        self._counts: Counter[str] = Counter()
        self._sums: defaultdict[str, float] = defaultdict(float)
        self._last_flush = time.monotonic()

    def handler_run(self, handler: str, outcome: str, seconds: float) -> None:
        """One handler call ended: ``ok``, ``error`` or ``skipped`` (stale)."""
        self._counts[f"runs{SEP}{handler}{SEP}{outcome}"] += 1
        if outcome == "skipped":
            return
        bucket = next((str(b) for b in HANDLER_BUCKETS if seconds <= b), "+Inf")
        self._counts[f"bucket{SEP}{handler}{SEP}{bucket}"] += 1
        self._sums[f"sum{SEP}{handler}"] += seconds

    def retry(self, handler: str) -> None:
        """A failed event was scheduled to run again."""
        self._counts[f"retries{SEP}{handler}"] += 1

    def dead_letter(self, handler: str) -> None:
        """An event was dead-lettered (or its lane parked)."""
        self._counts[f"dead{SEP}{handler}"] += 1

    def maybe_flush(self, connection: Redis) -> None:
        """Flush if the last flush is ``interval`` seconds old."""
        if time.monotonic() - self._last_flush >= self.interval:
            self.flush(connection)

    def flush(self, connection: Redis) -> None:
        """Add the buffered counts to Redis; keep them for later if Redis fails."""
        self._last_flush = time.monotonic()
        if not self._counts and not self._sums:
            return
        counts, sums = self._counts, self._sums
        self._counts, self._sums = Counter(), defaultdict(float)
        try:
            with connection.pipeline(transaction=False) as pipe:
                for name, value in counts.items():
                    pipe.hincrby(self.key, name, value)
                for name, total in sums.items():
                    pipe.hincrbyfloat(self.key, name, total)
                pipe.execute()
        except RedisError as exc:
            # Metrics are not data: keep the counts for the next flush.
            self._counts.update(counts)
            for name, total in sums.items():
                self._sums[name] += total
            log.warning("metrics_flush_failed", error=type(exc).__name__)
