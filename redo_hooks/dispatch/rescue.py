"""Rescue of lanes whose owner job is gone: run by worker maintenance."""

from __future__ import annotations

from collections.abc import Iterator

from ..logs import get_logger
from ..store.replies import text
from ..store.rq_internals import JOB_KEY_PREFIX
from ..store.rq_registries import scheduled_key
from .lane import Lane
from .lanes import LaneJob
from .runtime import Runtime

log = get_logger("redo_hooks.dispatch.rescue")


def rescue_orphaned_lanes(rt: Runtime) -> int:
    """Give lanes whose owner job is gone or failed to a new job; return how many.

    A lane's owner job can disappear outside redo-hooks' control: deleted by
    hand (``rq empty``), or failed by RQ after its crash retries ran out (a
    handler that kills its process every time, or one renamed while events
    waited), or left saying ``scheduled`` outside the scheduled registry (by
    the promoter of releases before 0.3, which was not atomic). Such a lane
    would wait forever. Worker maintenance walks the
    lanes that hold events (the waiting index, a page per round trip): for a
    failed owner the head event is dead-lettered first (it has had its
    retries); then the lane goes to a new job. A lane parked by an
    operator-facing handler is left alone.
    """
    k, rescued = rt.keys, 0
    for lanes in _batches(rt):
        for state, owner, status in _orphans(rt, lanes):
            handler_name, _, subject = state[len(k.lane_state_prefix) :].partition(":")
            handler = rt.registry.get(handler_name)
            if handler is None:
                log.warning(
                    "orphaned_lane_of_unknown_handler", handler=handler_name, return_id=subject
                )
                continue
            job = LaneJob(rt, handler, owner.split(":", 1)[0], owner=owner)
            if status == "failed":
                head = rt.connection.lindex(k.lane(handler_name, subject), 0)
                if head is not None:
                    tried = int(rt.connection.hget(state, "crashes") or 0)
                    Lane(job, subject).dead_letter(
                        text(head),
                        "job_failed",
                        "the lane's job failed (crashed every try)",
                        "",
                        tried,
                    )
            job.hand_off([subject], delay=0.0)
            if status == "scheduled":  # nothing will run it: no residue either
                rt.connection.delete(JOB_KEY_PREFIX + job.rq_job_id)
            log.warning("orphaned_lane_rescued", handler=handler_name, return_id=subject)
            rescued += 1
    return rescued


def _batches(rt: Runtime, size: int = 1000) -> Iterator[list[str]]:
    """The lanes holding events, ``size`` at a time (``ZSCAN`` of the waiting index)."""
    batch: list[str] = []
    for raw, _score in rt.connection.zscan_iter(rt.keys.waiting, count=size):
        batch.append(text(raw))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _orphans(rt: Runtime, lanes: list[str]) -> list[tuple[str, str, str | None]]:
    """(state, owner, owner job's status) of each lane whose owner job will not run it.

    One script call per page of lanes (``lanes_orphaned.lua``): the lane and
    job reads stay in Redis, so a pass over 40,000 lanes is about eighty
    round trips whatever the lanes hold.
    """
    k = rt.keys
    reply = rt.script("lanes_orphaned")(
        args=[
            k.lane_prefix,
            k.lane_state_prefix,
            JOB_KEY_PREFIX,
            *(scheduled_key(queue) for queue in (rt.queue, rt.quarantine)),
            *lanes,
        ]
    )
    found = [text(item) for item in reply]
    return [(found[i], found[i + 1], found[i + 2] or None) for i in range(0, len(found), 3)]
