"""A worker process's counts, buffered in process and added to ``<p>:metrics`` in Redis.

Workers are many processes on many machines: instead of each exposing an
endpoint, they add their counts to one Redis hash about once a second, and
the receiver's ``/metrics`` (``receiver/metrics.py``) reads it at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

from ..logs import get_logger
from ..store.batching import Batched

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
        #: When each handler last succeeded here: set (not added) in Redis.
        self._last_ok: dict[str, float] = {}
        self._last_flush = time.monotonic()

    def handler_run(self, handler: str, outcome: str, seconds: float) -> None:
        """One handler call ended: ``ok``, ``error`` or ``skipped`` (stale)."""
        self._counts[f"runs{SEP}{handler}{SEP}{outcome}"] += 1
        if outcome == "ok":
            self._last_ok[handler] = time.time()
        if outcome == "skipped":
            return
        bucket = next((str(b) for b in HANDLER_BUCKETS if seconds <= b), "+Inf")
        self._counts[f"bucket{SEP}{handler}{SEP}{bucket}"] += 1
        self._sums[f"sum{SEP}{handler}"] += seconds

    def retry(self, handler: str) -> None:
        """A failed event was scheduled to run again."""
        self._counts[f"retries{SEP}{handler}"] += 1

    def throttled(self, handler: str) -> None:
        """A lane waited for a permit (its handler's ``rate_limit`` or ``max_concurrency``)."""
        self._counts[f"throttled{SEP}{handler}"] += 1

    def dead_letter(self, handler: str) -> None:
        """An event was dead-lettered (or its lane parked)."""
        self._counts[f"dead{SEP}{handler}"] += 1

    def timeout(self, handler: str) -> None:
        """A call ran over its time limit (counted when it happens, not when it ends)."""
        self._counts[f"timeouts{SEP}{handler}"] += 1

    def due(self) -> bool:
        """Whether the last flush is ``interval`` seconds old."""
        return time.monotonic() - self._last_flush >= self.interval

    async def flush(self, batch: Batched) -> None:
        """Add the buffered counts to Redis from the loop; keep what failed for later."""
        taken = self._take()
        if taken is None:
            return
        counts, sums = taken
        sent: list[tuple[str, str, float]] = [("HINCRBY", n, v) for n, v in counts.items()]
        sent += [("HINCRBYFLOAT", n, total) for n, total in sums.items()]
        last_ok, self._last_ok = self._last_ok, {}
        # (another process may set an older time just after: close enough for "last success")
        sent += [("HSET", f"last_ok{SEP}{h}", at) for h, at in last_ok.items()]
        replies = await asyncio.gather(
            *(batch.command(command, self.key, name, value) for command, name, value in sent),
            return_exceptions=True,
        )
        errors = [r for r in replies if isinstance(r, BaseException)]
        if errors:
            lost = [s for s, r in zip(sent, replies, strict=True) if isinstance(r, BaseException)]
            self._keep(
                Counter(
                    {name: int(value) for command, name, value in lost if command == "HINCRBY"}
                ),
                defaultdict(float, {n: v for c, n, v in lost if c == "HINCRBYFLOAT"}),
                errors[0],
            )

    def _take(self) -> tuple[Counter[str], defaultdict[str, float]] | None:
        self._last_flush = time.monotonic()
        if not self._counts and not self._sums:
            return None
        counts, sums = self._counts, self._sums
        self._counts, self._sums = Counter(), defaultdict(float)
        return counts, sums

    def _keep(
        self, counts: Counter[str], sums: defaultdict[str, float], exc: BaseException
    ) -> None:
        # Metrics are not data: keep the counts for the next flush.
        self._counts.update(counts)
        for name, total in sums.items():
            self._sums[name] += total
        log.warning("metrics_flush_failed", error=type(exc).__name__)
