"""Rescue of lanes whose owner job is gone: run by worker maintenance."""

from __future__ import annotations

import structlog
from rq.job import Job

from ..store.replies import text
from .lanes import Lane, LaneJob
from .runtime import Runtime

log = structlog.get_logger("redo_hooks.dispatch.rescue")

# An owner job in one of these states will still run, or is running.
_LIVE = frozenset({"queued", "started", "scheduled", "deferred"})


def rescue_orphaned_lanes(rt: Runtime) -> int:
    """Give lanes whose owner job is gone or failed to a new job; return how many.

    A lane's owner job can disappear outside redo-hooks' control: deleted by
    hand (``rq empty``), or failed by RQ after its crash retries ran out (a
    handler that kills its process every time, or one renamed while events
    waited). Such a lane would wait forever. Worker maintenance walks the lane
    states: for a failed owner the head event is dead-lettered first (it has
    had its retries); then the lane goes to a new job. A lane parked by an
    operator-facing handler is left alone.
    """
    k, rescued = rt.keys, 0
    for raw in rt.connection.scan_iter(match=f"{k.lane_state_prefix}*", count=1000):
        state = text(raw)
        owner = rt.connection.hget(state, "owner")
        if owner is None or text(owner) == "parked":
            continue
        owner_s = text(owner)
        status = rt.connection.hget(Job.key_for(owner_s.split(":", 1)[0]), "status")
        if status is not None and text(status) in _LIVE:
            continue
        handler_name, _, subject = state[len(k.lane_state_prefix) :].partition(":")
        handler = rt.registry.get(handler_name)
        if handler is None:
            log.warning("orphaned_lane_of_unknown_handler", handler=handler_name, subject=subject)
            continue
        job = LaneJob(rt, handler, owner_s.split(":", 1)[0], owner=owner_s)
        if status is not None and text(status) == "failed":
            head = rt.connection.lindex(k.lane(handler_name, subject), 0)
            if head is not None:
                Lane(job, subject).dead_letter(
                    text(head), "job_failed", "the lane's job failed (crashed every try)", "", 0
                )
        job.hand_off([subject], delay=0.0)
        log.warning("orphaned_lane_rescued", handler=handler_name, subject=subject)
        rescued += 1
    return rescued
