"""A snapshot of the pipeline for operators: ``redo-hooks status APP``.

Reads only. Counting waiting events walks every lane key (``SCAN``), so its
cost grows with the number of returns that have events waiting: fine for an
operator's command, not for a tight monitoring loop.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from .keys import Keys
from .registry import Registry
from .replies import text
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Status:
    """What is waiting, running, retrying, dead or parked."""

    queued_jobs: int
    running_jobs: int
    scheduled_retries: int
    failed_jobs: int
    lanes_waiting: int
    events_waiting: int
    oldest_waiting_age_s: float | None
    dead_letters: int
    parked_lanes: int
    skipped_stale: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (for ``--json``)."""
        return asdict(self)


def snapshot(connection: Redis, settings: Settings, registry: Registry) -> Status:
    """Take a :class:`Status` of the app's queue and lanes."""
    keys = Keys(settings.key_prefix)
    queue = Queue(settings.queue, connection=connection)
    lanes = events = parked = 0
    oldest: float | None = None
    for lane in connection.scan_iter(match=f"{keys.lane_prefix}*", count=1000):
        waiting = connection.llen(lane)
        if not waiting:
            continue
        lanes += 1
        events += waiting
        head = connection.lindex(lane, 0)
        if head is not None:
            received = connection.hget(keys.event(text(head)), "received_at")
            if received is not None:
                at = float(text(received))
                oldest = at if oldest is None else min(oldest, at)
        state = keys.lane_state_prefix + text(lane)[len(keys.lane_prefix) :]
        if connection.hexists(state, "parked"):
            parked += 1
    skipped = {}
    for handler in registry:
        count = connection.get(keys.skipped(handler.name))
        if count is not None:
            skipped[handler.name] = int(text(count))
    return Status(
        queued_jobs=queue.count,
        running_jobs=StartedJobRegistry(queue=queue).count,
        scheduled_retries=ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
        failed_jobs=FailedJobRegistry(queue=queue).count,
        lanes_waiting=lanes,
        events_waiting=events,
        oldest_waiting_age_s=None if oldest is None else round(time.time() - oldest, 3),
        dead_letters=int(connection.zcard(keys.dead_ids)),
        parked_lanes=parked,
        skipped_stale=skipped,
    )
