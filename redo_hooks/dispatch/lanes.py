"""What a worker runs: one RQ job drains the lanes given to it, all at once, each in order.

A lane is the list ``<p>:lane:<handler>:<subject>``: one handler's waiting
events for one return. Exactly one RQ job owns a lane at a time
(``lanestate.owner``), so the handler sees that return's events one after
another in arrival order (guarantee 4), while other lanes — other returns,
other handlers — run in parallel in other jobs (guarantee 5).

The ingest script gives an idle lane to the handler's *open* job (queued, not
started, fewer than ``lanes_per_job`` lanes) or to a new one. A job starts by
claiming its lanes (``job_claim.lua``: no lane is added after that), then
drains them concurrently, each lane a task on the process's event loop
(``lane.py``: one event at a time). A lane's pass ends when:

* it is empty — ownership is released atomically with the emptiness check,
  so the next ingest gives the lane to a job again;
* it has run ``lane_batch`` events, the job's ``TIME_SLICE`` is over, or
  the worker is stopping — it waits for the job's end, where every such lane
  is handed on together, ``lanes_per_job`` to a new job at the back of the
  queue (:meth:`LaneJob.hand_on_together`): one busy return cannot
  monopolise a worker, and the process keeps its concurrency;
* the handler is at its ``max_concurrency`` or ``rate_limit`` — the lane is
  handed to a job scheduled for when a permit is likely free;
* the handler raised — the attempt is counted; with retries left, the lane is
  handed to a job scheduled after the backoff (later events of this return
  wait for this handler only); with none left, the event is dead-lettered and
  the lane moves on;
* another job owns it (``lost``) — nothing is touched.

A hand-off enqueues (or schedules) the new job and moves the lanes to it in
one MULTI/EXEC, so a lane is never without an owner job, nor with two.

A crash mid-handler leaves the job in RQ's StartedJobRegistry; RQ re-queues it
(it carries ``Retry``) and, still the owner, it resumes each lane at its head.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from rq.job import get_current_job
from rq.utils import now

from ..errors import ConfigurationError
from ..logs import get_logger
from ..store.connections import server_time
from ..store.replies import text
from ..store.rq_internals import CRASH_RETRIES, lane_job
from ..store.rq_registries import schedule
from .handlers import Handler
from .lane import Lane
from .runtime import Runtime

log = get_logger("redo_hooks.dispatch.lanes")

# A lane job yields the worker after this long, handing its lanes on.
TIME_SLICE = 5.0
# A worker without the lanes' handler passes them on, to run this much later.
UNKNOWN_HANDLER_DELAY = 5.0

_runtime: Runtime | None = None


def bind(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one lane jobs in this process use.

    RQ imports job functions by dotted name and passes only their arguments,
    so the worker binds its runtime here before it starts taking jobs.
    """
    global _runtime
    _runtime = runtime


def run_lane(handler_name: str) -> dict[str, int]:
    """RQ job function: drain the lanes of ``handler_name`` given to this job."""
    if _runtime is None:
        raise ConfigurationError(
            "no redo-hooks runtime in this worker: run lane jobs with "
            "`redo-hooks worker module:hooks`, not a plain `rq worker`"
        )
    job = get_current_job()
    if job is None:
        raise ConfigurationError("run_lane must run inside an RQ job")
    handler = _runtime.registry.get(handler_name)
    if handler is None:
        # A worker from before a deploy that added the handler, or after one
        # that removed or renamed it. Failing the job would let RQ give up on
        # it; instead hand its lanes to a job a worker that knows the handler
        # can take. Lanes whose head waited removed_handler_after are
        # dead-lettered (handler_removed): visible, and replayable.
        log.warning("handler_not_in_this_worker", handler=handler_name, job_id=job.id)
        absent = Handler(name=handler_name, func=print, events=(), is_async=False, retries=None)
        return LaneJob(_runtime, absent, job.id).pass_on(delay=UNKNOWN_HANDLER_DELAY)
    quarantined = job.origin == _runtime.settings.quarantine_queue
    lanes = LaneJob(_runtime, handler, job.id, quarantined=quarantined)
    if job.retries_left is not None and job.retries_left < CRASH_RETRIES:
        # RQ runs it again: its process died running it (or before starting it).
        return lanes.after_crash()
    return lanes.run()


#: Most bytes of stored bodies one claim's reply carries (``job_claim.lua``):
#: the reply sits in Redis' output buffer, which counts as Redis memory, and
#: under memory pressure that room is what the workers need. Lanes past it
#: read their head event in their first step. Typical stored bodies are small
#: enough that a job's lanes all fit; a flood of large ones does not.
CLAIM_BODY_BYTES = 128 * 1024


class LaneJob:
    """One RQ job's pass over the lanes it was given."""

    def __init__(
        self,
        rt: Runtime,
        handler: Handler,
        job_id: str,
        owner: str | None = None,
        *,
        quarantined: bool = False,
    ) -> None:
        self.rt = rt
        self.handler = handler
        self.rq_job_id = job_id
        #: A job of the quarantine queue: its one lane is handed on there too.
        self.quarantined = quarantined
        # The owner token of this run of the job: a re-run after a presumed
        # crash fences out the earlier run (see job_claim.lua). ``owner``
        # acts as an existing token instead (the orphan rescue does).
        self.job_id = owner or f"{job_id}:{uuid.uuid4().hex[:12]}"
        self.retries = rt.settings.retries if handler.retries is None else handler.retries
        self.started = time.monotonic()
        self.heads: dict[str, list[Any]] = {}  # subject -> its first lane_next reply
        #: Lanes to hand on when the job's pass ends (time slice over, or stopping).
        self.handing_on: list[str] = []
        #: Quarantined lanes cleared of a crash, to go back to the queue.
        self.cleared: list[str] = []
        self.stats = {
            "lanes": 0,
            "processed": 0,
            "skipped": 0,
            "dead": 0,
            "parked": 0,
            "retry_scheduled": 0,
            "throttled": 0,
        }

    def run(self) -> dict[str, int]:
        """Drain every lane, the lanes concurrently, each lane in order.

        The lanes run as tasks on the worker process's event loop: an async
        handler's call is awaited there (at most ``async_concurrency`` at
        once), a sync handler's runs on the process's thread pool
        (``sync_threads``). A lane's own steps stay strictly sequential.
        """
        subjects = self.claim(heads=True)
        self.rt.run(self._run_lanes(subjects))
        self.hand_on_together()
        self.rt.connection.delete(self.rt.keys.job_lanes(self.rq_job_id))
        return self.stats

    def hand_on_together(self) -> None:
        """Give the lanes that stopped for the time slice or a stop to shared new jobs.

        One job per ``lanes_per_job`` lanes, as ingest gathers them: a job of
        its own for each would cut the process's concurrency to its job slots
        (in quarantine, still one lane a job). Quarantined lanes cleared of a
        crash go back to the queue the same way.
        """
        per_job = self.rt.settings.lanes_per_job
        self._hand_on(self.handing_on, 1 if self.quarantined else per_job)
        self._hand_on(self.cleared, per_job, out=True)

    def _hand_on(self, subjects: list[str], size: int, *, out: bool = False) -> None:
        for n in range(0, len(subjects), size):
            self.hand_off(subjects[n : n + size], 0.0, out=out)
        subjects.clear()

    async def _run_lanes(self, subjects: Sequence[str]) -> None:
        tasks = [asyncio.ensure_future(Lane(self, subject).run()) for subject in subjects]
        limited = self.handler.max_concurrency is not None
        renewing = asyncio.ensure_future(self.rt.renew_permits()) if limited else None
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # A lane's bug, or the worker's cold stop: no lane goes on without
            # the job (a re-run of the job resumes each lane at its head).
            for task in tasks:
                task.cancel()
            raise
        finally:
            if renewing is not None:
                renewing.cancel()
            await self.rt.flush_metrics()

    def claim(self, *, heads: bool = False) -> list[str]:
        """Take this job's lanes under this run's owner token (``job_claim.lua``).

        With ``heads``, each lane's head event comes too (``self.heads``), so
        a lane's first step costs no round trip of its own.
        """
        k, name = self.rt.keys, self.handler.name
        reply = self.rt.script("job_claim")(
            keys=[k.open(name), k.job_lanes(self.rq_job_id)],
            args=[self.rq_job_id, self.job_id, k.lane_state(name, "")]
            + ([k.lane(name, ""), k.event_prefix, k.body_prefix] if heads else ["", "", ""])
            + [CLAIM_BODY_BYTES],
        )
        if not heads:
            return [text(subject) for subject in reply]
        for n in range(0, len(reply), 7):
            if text(reply[n + 1]):  # an empty lane's first step releases it, as usual
                self.heads[text(reply[n])] = ["event", *reply[n + 1 : n + 7]]
        return [text(subject) for subject in reply[::7]]

    def pass_on(self, delay: float) -> dict[str, int]:
        """Claim the lanes of a handler this worker lacks, and pass them on.

        Each goes to a job scheduled ``delay`` s from now, but for the lanes
        whose head event waited ``removed_handler_after``: their events are
        dead-lettered (``handler_removed``) and the lane is released.
        """
        subjects = self.claim()
        expired = [s for s in subjects if self.waited(s) >= self.rt.settings.removed_handler_after]
        for subject in expired:
            self.stats["dead"] += Lane(self, subject).dead_letter_all(
                "handler_removed",
                f"no worker has handler {self.handler.name!r} (removed or renamed by a "
                f"deploy?) after {self.rt.settings.removed_handler_after:g} s",
            )
        rest = [s for s in subjects if s not in expired]
        if rest:
            self.hand_off(rest, delay=delay)
        self.rt.connection.delete(self.rt.keys.job_lanes(self.rq_job_id))
        return self.stats

    def waited(self, subject: str) -> float:
        """Seconds the lane's head event has waited (by Redis' clock)."""
        rt = self.rt
        since = rt.connection.zscore(rt.keys.waiting, rt.keys.lane(self.handler.name, subject))
        if since is None:
            return 0.0
        return server_time(rt.connection) - float(since)

    def out_of_time(self) -> bool:
        """Whether this job must hand its lanes on: time slice used, or worker stopping."""
        return self.rt.stopping or time.monotonic() - self.started > TIME_SLICE

    def after_crash(self) -> dict[str, int]:
        """This job's process died running it: charge the crash, then quarantine each lane.

        Which of its lanes took the process down is not known, so each is
        charged the crash (``crashes`` in its state) and goes on alone: a job
        of one lane on the quarantine queue, run by a process that runs one
        job at a time (``Runtime.serve``), where a crash can only be its own.
        A head event charged ``max_crashes`` crashes is dead-lettered
        (``process_crashed``, its crashes as attempts, how the process died);
        an innocent lane's count is reset by its next success there, and the
        lane goes back to the queue among the others.
        """
        rt, k = self.rt, self.rt.keys
        subjects = self.claim()
        how = text(rt.connection.get(k.crash(self.rq_job_id)) or b"") or "its process died"
        for subject in subjects:
            state = k.lane_state(self.handler.name, subject)
            crashes = int(rt.connection.hincrby(state, "crashes", 1))
            log.warning(
                "lane_charged_a_crash",
                handler=self.handler.name,
                return_id=subject,
                crashes=crashes,
                how=how,
            )
            if crashes < rt.settings.max_crashes:
                continue
            head = rt.connection.lindex(k.lane(self.handler.name, subject), 0)
            if head is not None:
                Lane(self, subject).dead_letter(
                    text(head),
                    "process_crashed",
                    f"the worker process running it died {crashes} times (last: {how})",
                    "",
                    crashes,
                )
                self.stats["dead"] += 1
            rt.connection.hdel(state, "crashes")
        for subject in subjects:
            self.hand_off([subject], delay=0.0, into=True)
        rt.connection.delete(k.job_lanes(self.rq_job_id))
        return self.stats

    def hand_off(
        self,
        subjects: Sequence[str],
        delay: float,
        *,
        into: bool = False,
        out: bool = False,
        throttled: bool = False,
    ) -> None:
        """Give lanes this job owns to a new job (now, or after ``delay`` s), atomically.

        One MULTI/EXEC enqueues (or schedules) the new job and, in
        ``lanes_transfer.lua``, moves to it each lane this job still owns.
        The new job is on this job's queue; ``into``/``out``: into the
        quarantine, or out of it. ``throttled``: it waits for a permit, not
        after a failure (``status`` counts it apart from retries).
        """
        rt, k = self.rt, self.rt.keys
        queue = rt.quarantine if (into or self.quarantined) and not out else rt.queue
        job = lane_job(rt.connection, queue.name, self.handler.name)
        with rt.connection.pipeline(transaction=True) as pipe:
            if delay > 0:
                due = now() + timedelta(seconds=delay)
                schedule(queue, job, due, pipe)
                if throttled:
                    pipe.zadd(k.throttled, {job.id: due.timestamp()})
                    # Those due a while ago were promoted: the index keeps only the rest.
                    pipe.zremrangebyscore(k.throttled, "-inf", due.timestamp() - delay - 60)
            else:
                queue.enqueue_job(job, pipeline=pipe)
            rt.script("lanes_transfer")(
                keys=[k.job_lanes(job.id)] + [k.lane_state(self.handler.name, s) for s in subjects],
                args=[self.job_id, job.id, *subjects],
                client=pipe,
            )
            pipe.execute()
