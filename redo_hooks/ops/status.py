"""A snapshot of the pipeline for operators: ``redo-hooks status APP``.

Reads only, in a few round trips whatever the backlog: waiting events and
lanes come from the waiting index the Lua scripts keep (``<p>:waiting``),
not from walking the lanes, and dead and parked letters are counted from
their indexes, never by reading the records (tracebacks and all). Lanes of
handlers the app lacks are found by paging through the waiting index.
(For monitoring, scrape ``/metrics``.)
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis
from rq import Queue

from ..dispatch.handlers import Registry
from ..settings import Settings
from ..store.drift import PARTS, DriftFinding, decode
from ..store.keys import Keys
from ..store.replies import text
from ..store.retention import parked_letters
from ..store.rq_registries import registry_counts


@dataclass(frozen=True, slots=True)
class Status:
    """What is waiting, running, retrying, dead or parked."""

    queued_jobs: int
    running_jobs: int
    #: Jobs scheduled to run again after a failure (their backoff).
    scheduled_retries: int
    failed_jobs: int
    lanes_waiting: int
    events_waiting: int
    oldest_waiting_age_s: float | None
    dead_letters: int
    parked_lanes: int
    skipped_stale: dict[str, int]
    #: Lanes waiting for a handler this app does not have (removed or renamed?).
    missing_handlers: dict[str, int]
    #: What Redo sent that the models do not know, most seen first.
    schema_drift: list[DriftFinding] = field(default_factory=list)
    #: Schema-drift findings seen past the tracked cap.
    schema_drift_untracked: int = 0
    #: Jobs scheduled to wait for a permit (``rate_limit``, ``max_concurrency``):
    #: held back on purpose, not failing; apart from ``scheduled_retries``.
    throttled_jobs: int = 0
    #: When the newest stored event was received (epoch s); None: none stored.
    last_event_at: float | None = None
    #: ``alert_no_events_after`` is set and no event came for longer: Redo
    #: stopped sending here (a subscription deleted or moved, a secret rotated).
    quiet: bool = False
    #: Lanes a crashed process left, each in a job of its own on the quarantine
    #: queue (queued, running or scheduled): they run one at a time until each
    #: ran an event without a crash (``max_crashes``). Not in the job counts above.
    quarantined_lanes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (for ``--json``)."""
        return asdict(self)


def snapshot(connection: Redis, settings: Settings, registry: Registry | None) -> Status:
    """Take a :class:`Status` of the app's queue and lanes.

    Without the app's ``registry``, the per-handler figures (stale events
    skipped, lanes of handlers the app lacks) are left empty.
    """
    handlers = list(registry) if registry is not None else []
    keys = Keys(settings.key_prefix)
    queue = Queue(settings.queue, connection=connection)
    with connection.pipeline(transaction=False) as pipe:
        pipe.get(keys.waiting_events)
        pipe.zcard(keys.waiting)
        pipe.zrange(keys.waiting, 0, 0, withscores=True)
        pipe.hlen(keys.dead)
        pipe.exists(keys.parked_indexed)
        pipe.zcard(keys.parked)
        for part in PARTS:  # each at most drift_max_findings fields
            pipe.hgetall(keys.drift(part))
        pipe.get(keys.drift("untracked"))
        pipe.zcount(keys.throttled, time.time() - 1, "+inf")
        pipe.zrevrange(keys.events, 0, 0, withscores=True)
        for handler in handlers:
            pipe.get(keys.skipped(handler.name))
        events, lanes, oldest, dead, indexed, parked, *rest = pipe.execute()
    drift, untracked = rest[: len(PARTS)], rest[len(PARTS)]
    throttled, newest = int(rest[len(PARTS) + 1]), rest[len(PARTS) + 2]
    skipped_counts = rest[len(PARTS) + 3 :]
    last_event_at = float(newest[0][1]) if newest else None
    quiet_after = settings.alert_no_events_after
    quiet = bool(quiet_after) and (
        last_event_at is None or time.time() - last_event_at > quiet_after
    )
    jobs = registry_counts(connection, queue)  # read-only: RQ's counts clean first
    quarantine = registry_counts(
        connection, Queue(settings.quarantine_queue, connection=connection)
    )
    if not indexed:  # until a worker's maintenance indexed letters parked before the index
        parked = sum(1 for _ in parked_letters(connection, keys))
    skipped = {
        handler.name: int(text(count))
        for handler, count in zip(handlers, skipped_counts, strict=True)
        if count is not None
    }
    return Status(
        queued_jobs=jobs["queued"],
        running_jobs=jobs["running"],
        scheduled_retries=max(0, jobs["scheduled"] - throttled),
        failed_jobs=jobs["failed"],
        lanes_waiting=int(lanes),
        events_waiting=max(0, int(text(events))) if events is not None else 0,
        oldest_waiting_age_s=round(time.time() - float(oldest[0][1]), 3) if oldest else None,
        dead_letters=int(dead),
        parked_lanes=parked,
        skipped_stale=skipped,
        missing_handlers={} if registry is None else missing_handlers(connection, keys, registry),
        schema_drift=decode(drift),
        schema_drift_untracked=int(untracked or 0),
        throttled_jobs=min(throttled, jobs["scheduled"]),
        last_event_at=last_event_at,
        quiet=quiet,
        quarantined_lanes=quarantine["queued"] + quarantine["running"] + quarantine["scheduled"],
    )


def missing_handlers(connection: Redis, keys: Keys, registry: Registry) -> dict[str, int]:
    """Lanes with events waiting, per handler name that ``registry`` does not have."""
    counts: Counter[str] = Counter()
    for raw, _score in connection.zscan_iter(keys.waiting, count=1000):
        handler = text(raw)[len(keys.lane_prefix) :].split(":", 1)[0]
        if registry.get(handler) is None:
            counts[handler] += 1
    return dict(counts)
