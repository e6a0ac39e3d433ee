"""Scheduled jobs (retries after their backoff, throttled lanes) moved onto the queue when due.

In place of RQ's scheduler, which runs in a forked process holding locks and
rebuilds its own connection from the pool's parameters (so it cannot follow
a Sentinel failover): every worker promotes what is due, from a thread, in
one script call (``store/rq_registries.promote_due``) that lets exactly one
worker take each job and leaves none in between the registry and the queue.
"""

from __future__ import annotations

import math
import threading
import time

from redis import Redis
from rq import Queue

from ..logs import get_logger
from ..store.rq_registries import promote_due

log = get_logger("redo_hooks.dispatch.worker")

#: Seconds between two promotions of due scheduled jobs.
PROMOTE_INTERVAL = 0.5


def start_promoter(connection: Redis, queues: list[Queue]) -> threading.Event:
    """Promote due scheduled jobs of ``queues`` from a thread; set the returned event to stop it."""
    done = threading.Event()

    def promote() -> None:
        while not done.wait(PROMOTE_INTERVAL):
            try:
                for queue in queues:
                    promote_scheduled(connection, [queue], wait=False)
            except Exception as exc:  # Redis away: try again next time
                log.debug("promote_failed", error=type(exc).__name__)

    threading.Thread(target=promote, name="redo-hooks-promoter", daemon=True).start()
    return done


def promote_scheduled(
    connection: Redis,
    queues: list[Queue],
    *,
    wait: bool,
    all_now: bool = False,
    deadline: float | None = None,
) -> bool:
    """Move due scheduled jobs onto their queues; ``False`` when none is scheduled.

    With ``wait``, sleeps until the earliest scheduled job is due, or until
    ``deadline`` (a ``time.monotonic()`` value) passes;
    ``all_now`` (tests: :func:`redo_hooks.testing.drain`) takes every
    scheduled job as due, whatever its backoff. Each pass
    is one script call a queue (``promote_due``): concurrent workers never
    enqueue the same job twice, and no error in between leaves a job in
    neither the registry nor the queue.
    """
    while True:
        promoted, next_due = 0, []
        for queue in queues:
            promotion = promote_due(connection, queue, math.inf if all_now else time.time())
            if promotion.dropped:
                log.warning("scheduled_ids_without_job_dropped", count=promotion.dropped)
            promoted += promotion.promoted
            if promotion.next_due is not None:
                next_due.append(promotion.next_due)
        if promoted or not wait or not next_due:
            return promoted > 0 or bool(next_due)
        if deadline is not None and time.monotonic() > deadline:
            return True  # some are still scheduled: the caller says it ran out of time
        time.sleep(min(max(min(next_due) - time.time(), 0.0), 0.25))
