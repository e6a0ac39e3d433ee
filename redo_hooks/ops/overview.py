"""Health at a glance, per handler and per worker process: the dashboard's overview.

Per handler, from the workers' counters (``<p>:metrics``, since the counters
began) and the open issues: runs ok and failed, retries, throttled waits,
open dead letters and parked lanes, the p50/p95 duration (from the
histogram's buckets: an upper bound) and the last success. Per worker
process, from RQ's worker registry (each job slot is an RQ worker): its
slots, how many are busy, its last heartbeat, its RQ and Python versions.
A few round trips, whatever the store's size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redis import Redis
from rq import Worker

from ..dispatch.counters import HANDLER_BUCKETS, SEP
from ..dispatch.handlers import Registry
from ..store.keys import Keys
from ..store.replies import text
from .issues import Issue

if TYPE_CHECKING:
    from rq.worker import BaseWorker


@dataclass(frozen=True, slots=True)
class HandlerSummary:
    """One handler's figures on the overview."""

    name: str
    ok: int
    errors: int
    retries: int
    throttled: int
    #: Open dead letters (parked ones included) and parked lanes, from its issues.
    dead: int
    parked: int
    #: Upper bounds (s) of the histogram buckets holding the median and 95th
    #: percentile call; None before any call.
    p50: float | None
    p95: float | None
    #: When a call last succeeded (epoch s), as a worker last reported it.
    last_ok: float | None


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    """One worker process: its job slots as RQ registered them."""

    hostname: str
    pid: int
    slots: int
    busy: int
    #: The newest heartbeat of its slots (epoch s).
    last_beat: float | None
    rq_version: str
    python_version: str
    #: The queues it serves (a service runs one process on the quarantine queue alone).
    queues: tuple[str, ...] = ()


def handler_summaries(
    connection: Redis, keys: Keys, registry: Registry | None, issues: list[Issue]
) -> list[HandlerSummary]:
    """Every handler the app has or the counters know, by name."""
    fields = {text(k): text(v) for k, v in connection.hgetall(keys.metrics).items()}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    buckets: dict[str, dict[str, int]] = defaultdict(dict)
    last_ok: dict[str, float] = {}
    for name, value in fields.items():
        kind, _, rest = name.partition(SEP)
        if kind == "runs":
            handler, _, outcome = rest.rpartition(SEP)
            counts[handler][outcome] += int(value)
        elif kind in ("retries", "throttled"):
            counts[rest][kind] += int(value)
        elif kind == "bucket":
            handler, _, bound = rest.rpartition(SEP)
            buckets[handler][bound] = int(value)
        elif kind == "last_ok":
            last_ok[rest] = float(value)
    for issue in issues:
        counts[issue.handler]["dead"] += issue.count
        counts[issue.handler]["parked"] += issue.parked
    names = set(counts) | set(last_ok) | {h.name for h in registry or []}
    return [
        HandlerSummary(
            name=name,
            ok=counts[name]["ok"],
            errors=counts[name]["error"],
            retries=counts[name]["retries"],
            throttled=counts[name]["throttled"],
            dead=counts[name]["dead"],
            parked=counts[name]["parked"],
            p50=_percentile(buckets[name], 0.5),
            p95=_percentile(buckets[name], 0.95),
            last_ok=last_ok.get(name),
        )
        for name in sorted(names)
    ]


def _percentile(counts: dict[str, int], q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (``inf``: past the last)."""
    total = sum(counts.values())
    if not total:
        return None
    seen = 0
    for bound in (*(str(b) for b in HANDLER_BUCKETS), "+Inf"):
        seen += counts.get(bound, 0)
        if seen >= q * total:
            return float("inf") if bound == "+Inf" else float(bound)
    return float("inf")


def worker_processes(connection: Redis, queues: set[str]) -> list[WorkerProcess]:
    """The worker processes serving any of ``queues``, from RQ's registry of workers."""
    grouped: dict[tuple[str, int], list[BaseWorker]] = defaultdict(list)
    for worker in Worker.all(connection=connection):
        if queues & set(worker.queue_names()):
            grouped[worker.hostname or "?", worker.pid or 0].append(worker)
    out = []
    for (hostname, pid), slots in sorted(grouped.items()):
        beats = [_epoch(w.last_heartbeat) for w in slots if w.last_heartbeat is not None]
        out.append(
            WorkerProcess(
                hostname=hostname,
                pid=pid,
                slots=len(slots),
                busy=sum(1 for w in slots if w.get_state() == "busy"),
                last_beat=max(beats) if beats else None,
                rq_version=slots[0].version,
                python_version=slots[0].python_version.split()[0],
                queues=tuple(sorted({q for w in slots for q in w.queue_names()})),
            )
        )
    return out


def _epoch(moment: datetime) -> float:
    # (rq 2 reads its times back naive, in UTC; rq 3 aware)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
