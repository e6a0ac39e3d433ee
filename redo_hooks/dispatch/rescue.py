"""Rescue of lanes whose owner job is gone: run by worker maintenance."""

from __future__ import annotations

from collections.abc import Iterator

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
    for states in _batches(rt, f"{k.lane_state_prefix}*"):
        for state, owner, status in _owners(rt, states):
            handler_name, _, subject = state[len(k.lane_state_prefix) :].partition(":")
            handler = rt.registry.get(handler_name)
            if handler is None:
                log.warning(
                    "orphaned_lane_of_unknown_handler", handler=handler_name, subject=subject
                )
                continue
            job = LaneJob(rt, handler, owner.split(":", 1)[0], owner=owner)
            if status == "failed":
                head = rt.connection.lindex(k.lane(handler_name, subject), 0)
                if head is not None:
                    Lane(job, subject).dead_letter(
                        text(head), "job_failed", "the lane's job failed (crashed every try)", "", 0
                    )
            job.hand_off([subject], delay=0.0)
            log.warning("orphaned_lane_rescued", handler=handler_name, subject=subject)
            rescued += 1
    return rescued


def _batches(rt: Runtime, match: str, size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for raw in rt.connection.scan_iter(match=match, count=size):
        batch.append(text(raw))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _owners(rt: Runtime, states: list[str]) -> list[tuple[str, str, str | None]]:
    """(state, owner, owner job's status) of each lane whose owner job is not live.

    Two pipelined round trips per batch, however many lanes: a pass over
    20,000 lanes is a handful of round trips, not 40,000.
    """
    with rt.connection.pipeline(transaction=False) as pipe:
        for state in states:
            pipe.hget(state, "owner")
        owners = [None if o is None else text(o) for o in pipe.execute()]
    held = [(s, o) for s, o in zip(states, owners, strict=True) if o not in (None, "parked")]
    with rt.connection.pipeline(transaction=False) as pipe:
        for _, owner in held:
            pipe.hget(Job.key_for(str(owner).split(":", 1)[0]), "status")
        statuses = [None if st is None else text(st) for st in pipe.execute()]
    return [
        (state, str(owner), status)
        for (state, owner), status in zip(held, statuses, strict=True)
        if status is None or status not in _LIVE
    ]
