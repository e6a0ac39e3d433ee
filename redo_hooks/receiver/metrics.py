"""Prometheus metrics: the receiver's own, and the workers' through Redis.

The receiver counts its requests and ingest latency in process. Workers are
many processes on many machines, so instead of each exposing an endpoint
they add their counts to one Redis hash (``<p>:metrics``), buffered in
process and flushed about once a second; the receiver's ``/metrics`` reads
that hash and the waiting index (``<p>:waiting``) at scrape time, so one
endpoint shows the whole pipeline. Pipeline series are cluster-wide: with
several receivers, every one of them reports the same values (aggregate
them with ``max``, not ``sum``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ..dispatch.counters import HANDLER_BUCKETS, RESPAWNS, SEP
from ..logs import get_logger
from ..store.drift import split
from ..store.ingest import RETENTION_YIELDED
from ..store.keys import Keys
from ..store.replies import text
from ..store.rq_registries import live_job_keys

log = get_logger("redo_hooks.receiver.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds (seconds) of the ingest-latency histogram.
INGEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ReceiverMetrics:
    """The receiver's metrics registry: its own counters, and the pipeline's from Redis."""

    def __init__(self, keys: Keys, queue: str, quarantine: str) -> None:
        self.keys = keys
        listed, taken, *_ = live_job_keys(queue)
        self.queue_keys = (listed, taken)  # queued: listed, or taken and not yet started
        self.quarantine_keys = live_job_keys(quarantine)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = PromCounter(
            "redo_hooks_requests",
            "Webhook requests by outcome: accepted, duplicate, unhandled, rejected "
            "(reason: why) or deferred (503, reason: why).",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], Any] = {}
        self.ingest_seconds = Histogram(
            "redo_hooks_ingest_duration_seconds",
            "Time from request to acknowledgement, for acknowledged events.",
            buckets=INGEST_BUCKETS,
            registry=self.registry,
        )

    def request(self, outcome: str, reason: str = "") -> None:
        """Count one request (the labelled child looked up once per label pair)."""
        child = self._children.get((outcome, reason))
        if child is None:
            child = self._children[outcome, reason] = self.requests.labels(outcome, reason)
        child.inc()

    async def render(self, redis: AsyncRedis, timeout: float) -> bytes:
        """The exposition text: this process's metrics and a snapshot of the pipeline's."""
        snapshot: PipelineSnapshot | None
        try:
            async with asyncio.timeout(timeout):
                snapshot = await PipelineSnapshot.read(
                    redis, self.keys, self.queue_keys, self.quarantine_keys
                )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("metrics_redis_unavailable", error=type(exc).__name__)
            snapshot = None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Static(list(self.registry.collect())))
        registry.register(_Static(_pipeline_metrics(snapshot)))
        return generate_latest(registry)


@dataclass(frozen=True, slots=True)
class PipelineSnapshot:
    """What the workers reported, and what waits, read from Redis in one round trip."""

    fields: Mapping[str, str]
    events_waiting: int
    lanes_waiting: int
    oldest_received: float | None
    queued_jobs: int
    dead_letters: int
    now: float
    #: Schema-drift finding ("kind|path|value") -> times seen; and how many
    #: were seen past the tracked cap.
    drift: Mapping[str, int]
    drift_untracked: int
    #: When the newest stored event was received (Redis' clock); None: none stored.
    last_stored: float | None = None
    #: Lanes in the quarantine queue's jobs (queued, taken, running or scheduled).
    quarantined_lanes: int = 0

    @classmethod
    async def read(
        cls,
        redis: AsyncRedis,
        keys: Keys,
        queue_keys: tuple[str, str],
        quarantine_keys: tuple[str, str, str, str],
    ) -> PipelineSnapshot:
        """One read of every key the pipeline metrics need, in one MULTI.

        A job moves between the queue's keys (listed, taken, started,
        scheduled) as it runs: read at once, it is counted once.
        """
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.metrics)
            pipe.get(keys.waiting_events)
            pipe.zcard(keys.waiting)
            pipe.zrange(keys.waiting, 0, 0, withscores=True)
            pipe.llen(queue_keys[0])
            pipe.zcard(keys.dead_ids)
            pipe.time()
            pipe.hgetall(keys.drift("count"))  # at most drift_max_findings fields
            pipe.get(keys.drift("untracked"))
            pipe.zrevrange(keys.events, 0, 0, withscores=True)
            pipe.llen(queue_keys[1])
            listed, taken, started, scheduled = quarantine_keys
            pipe.llen(listed)
            pipe.llen(taken)
            pipe.zcard(started)
            pipe.zcard(scheduled)
            replies = await pipe.execute()
        fields, events, lanes, oldest, queued, dead, now, drift, untracked, newest = replies[:10]
        taken, *quarantined = replies[10:]
        return cls(
            {text(k): text(v) for k, v in fields.items()},
            max(0, int(text(events))) if events is not None else 0,
            int(lanes),
            float(oldest[0][1]) if oldest else None,
            int(queued) + int(taken),
            int(dead),
            int(now[0]) + int(now[1]) / 1e6,
            {text(k): int(v) for k, v in drift.items()},
            int(untracked or 0),
            float(newest[0][1]) if newest else None,
            sum(int(count) for count in quarantined),
        )


def _pipeline_metrics(snapshot: PipelineSnapshot | None) -> list[Metric]:
    up = GaugeMetricFamily(
        "redo_hooks_redis_up", "1 if Redis answered this scrape (pipeline series below need it)."
    )
    up.add_metric([], 0 if snapshot is None else 1)
    if snapshot is None:
        return [up]
    waiting = GaugeMetricFamily("redo_hooks_events_waiting", "Events waiting in lanes.")
    waiting.add_metric([], snapshot.events_waiting)
    lanes = GaugeMetricFamily(
        "redo_hooks_lanes_waiting", "Lanes (handler x return) with events waiting."
    )
    lanes.add_metric([], snapshot.lanes_waiting)
    oldest = GaugeMetricFamily(
        "redo_hooks_oldest_waiting_seconds",
        "Age of the oldest event waiting in a lane (0 when none waits).",
    )
    age = 0.0 if snapshot.oldest_received is None else snapshot.now - snapshot.oldest_received
    oldest.add_metric([], max(0.0, age))
    queued = GaugeMetricFamily("redo_hooks_queued_jobs", "Lane jobs queued in RQ, not started.")
    queued.add_metric([], snapshot.queued_jobs)
    quarantined = GaugeMetricFamily(
        "redo_hooks_quarantined_lanes",
        "Lanes a crashed process left, each running alone until it runs an event without a crash.",
    )
    quarantined.add_metric([], snapshot.quarantined_lanes)
    dead_now = GaugeMetricFamily("redo_hooks_dead_letters", "Dead letters waiting for an operator.")
    dead_now.add_metric([], snapshot.dead_letters)
    last = GaugeMetricFamily(
        "redo_hooks_last_event_stored_timestamp_seconds",
        "When the newest stored event was received: alert when Redo goes quiet.",
    )
    if snapshot.last_stored is not None:
        last.add_metric([], snapshot.last_stored)
    return [
        up,
        waiting,
        lanes,
        oldest,
        queued,
        quarantined,
        dead_now,
        last,
        *_drift_metrics(snapshot),
        *_worker_metrics(snapshot.fields),
    ]


def _drift_metrics(snapshot: PipelineSnapshot) -> list[Metric]:
    seen = CounterMetricFamily(
        "redo_hooks_schema_drift",
        "Bodies seen (sampled) with a field (kind=field) or an enum value (kind=enum) "
        "the models do not know; at most drift_max_findings label sets.",
        labels=["kind", "path", "value"],
    )
    for finding, count in sorted(snapshot.drift.items()):
        seen.add_metric(list(split(finding)), float(count))
    untracked = CounterMetricFamily(
        "redo_hooks_schema_drift_untracked",
        "Schema-drift findings seen past the tracked cap (drift_max_findings).",
    )
    untracked.add_metric([], float(snapshot.drift_untracked))
    return [seen, untracked]


def _worker_metrics(fields: Mapping[str, str]) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "redo_hooks_handler_runs",
        "Handler calls by outcome: ok, error (the call raised) or skipped (stale).",
        labels=["handler", "outcome"],
    )
    retries = CounterMetricFamily(
        "redo_hooks_retries", "Failed events scheduled to run again.", labels=["handler"]
    )
    dead = CounterMetricFamily(
        "redo_hooks_dead_lettered", "Events dead-lettered (or parked).", labels=["handler"]
    )
    throttled = CounterMetricFamily(
        "redo_hooks_throttled",
        "Lanes that waited for a permit (rate_limit, max_concurrency): not failures.",
        labels=["handler"],
    )
    last_ok = GaugeMetricFamily(
        "redo_hooks_handler_last_success_timestamp_seconds",
        "When a call of the handler last succeeded (a worker's clock): alert on its age.",
        labels=["handler"],
    )
    respawns = CounterMetricFamily(
        "redo_hooks_worker_respawns",
        "Worker processes that died and were started again by their parent.",
    )
    respawns.add_metric([], float(fields.get(RESPAWNS, 0)))
    yielded = CounterMetricFamily(
        "redo_hooks_retention_yielded",
        "Processed events kept for replay that were dropped early to make room in Redis.",
    )
    yielded.add_metric([], float(fields.get(RETENTION_YIELDED, 0)))
    buckets: dict[str, Counter[str]] = {}
    sums: dict[str, float] = {}
    for name, value in sorted(fields.items()):
        kind, _, rest = name.partition(SEP)
        if kind == "runs":
            handler, _, outcome = rest.rpartition(SEP)
            runs.add_metric([handler, outcome], float(value))
        elif kind == "retries":
            retries.add_metric([rest], float(value))
        elif kind == "dead":
            dead.add_metric([rest], float(value))
        elif kind == "throttled":
            throttled.add_metric([rest], float(value))
        elif kind == "last_ok":
            last_ok.add_metric([rest], float(value))
        elif kind == "bucket":
            handler, _, bound = rest.rpartition(SEP)
            buckets.setdefault(handler, Counter())[bound] += int(value)
        elif kind == "sum":
            sums[rest] = float(value)
    duration = HistogramMetricFamily(
        "redo_hooks_handler_duration_seconds",
        "Handler call durations.",
        labels=["handler"],
    )
    for handler, counts in sorted(buckets.items()):
        duration.add_metric([handler], _cumulative(counts), sums.get(handler, 0.0))
    yield from (runs, retries, throttled, dead, duration, last_ok, respawns, yielded)


def _cumulative(counts: Counter[str]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound in (*(str(b) for b in HANDLER_BUCKETS), "+Inf"):
        total += counts.get(bound, 0)
        out.append((bound, float(total)))
    return out


class _Static(Collector):
    """Collects a fixed list of metric families (one scrape's snapshot)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics

    def describe(self) -> Iterable[Any]:
        return []
