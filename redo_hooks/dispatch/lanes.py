"""What a worker runs: one RQ job drains the lanes given to it, all at once, each in order.

A lane is the list ``<p>:lane:<handler>:<subject>``: one handler's waiting
events for one return. Exactly one RQ job owns a lane at a time
(``lanestate.owner``), so the handler sees that return's events one after
another in arrival order (guarantee 4), while other lanes — other returns,
other handlers — run in parallel in other jobs (guarantee 5).

The ingest script gives an idle lane to the handler's *open* job (queued, not
started, fewer than ``lanes_per_job`` lanes) or to a new one. A job starts by
claiming its lanes (``job_claim.lua``: no lane is added after that), then
drains them concurrently, each lane a task on the process's event loop and
strictly sequential itself: take the head event, run the handler (awaited,
or on the thread pool), acknowledge (pop) it and take the next head in one
script call (``lane_next.lua``). A lane ends when:

* it is empty — ownership is released atomically with the emptiness check,
  so the next ingest gives the lane to a job again;
* it has run ``lane_batch`` events — it is handed to a new job at the back of
  the queue, so one busy return cannot monopolise a worker;
* the handler is at its ``max_concurrency`` or ``rate_limit`` — the lane is
  handed to a job scheduled for when a permit is likely free;
* the handler raised — the attempt is counted; with retries left, the lane is
  handed to a job scheduled after the backoff (later events of this return
  wait for this handler only); with none left, the event is dead-lettered and
  the lane moves on;
* another job owns it (``lost``) — nothing is touched.

After ``TIME_SLICE`` seconds a job hands all its remaining lanes to a new job.
A hand-off enqueues (or schedules) the new job and moves the lanes to it in
one MULTI/EXEC, so a lane is never without an owner job, nor with two.

A crash mid-handler leaves the job in RQ's StartedJobRegistry; RQ re-queues it
(it carries ``Retry``) and, still the owner, it resumes each lane at its head.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from rq.job import get_current_job
from rq.utils import now

from .. import tracing
from ..errors import ConfigurationError
from ..logs import get_logger
from ..models import ReturnEvent, decode_event
from ..store import runlog
from ..store.connections import server_time
from ..store.events import unpack_body
from ..store.replies import text
from ..store.rq_internals import lane_job
from ..store.rq_registries import schedule
from .context import HandlerContext
from .failures import LaneFailures
from .handlers import Handler
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
    return LaneJob(_runtime, handler, job.id).run()


class LaneJob:
    """One RQ job's pass over the lanes it was given."""

    def __init__(
        self, rt: Runtime, handler: Handler, job_id: str, owner: str | None = None
    ) -> None:
        self.rt = rt
        self.handler = handler
        self.rq_job_id = job_id
        # The owner token of this run of the job: a re-run after a presumed
        # crash fences out the earlier run (see job_claim.lua). ``owner``
        # acts as an existing token instead (the orphan rescue does).
        self.job_id = owner or f"{job_id}:{uuid.uuid4().hex[:12]}"
        self.retries = rt.settings.retries if handler.retries is None else handler.retries
        self.started = time.monotonic()
        self.heads: dict[str, list[Any]] = {}  # subject -> its first lane_next reply
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
        self.rt.connection.delete(self.rt.keys.job_lanes(self.rq_job_id))
        return self.stats

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
            self.rt.metrics.flush(self.rt.connection)  # on the loop, like every count

    def claim(self, *, heads: bool = False) -> list[str]:
        """Take this job's lanes under this run's owner token (``job_claim.lua``).

        With ``heads``, each lane's head event comes too (``self.heads``), so
        a lane's first step costs no round trip of its own.
        """
        k, name = self.rt.keys, self.handler.name
        reply = self.rt.script("job_claim")(
            keys=[k.open(name), k.job_lanes(self.rq_job_id)],
            args=[self.rq_job_id, self.job_id, k.lane_state(name, "")]
            + ([k.lane(name, ""), k.event_prefix, k.body_prefix] if heads else ["", "", ""]),
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

    def hand_off(self, subjects: Sequence[str], delay: float) -> None:
        """Give lanes this job owns to a new job (now, or after ``delay`` s), atomically.

        One MULTI/EXEC enqueues (or schedules) the new job and, in
        ``lanes_transfer.lua``, moves to it each lane this job still owns.
        """
        rt, k = self.rt, self.rt.keys
        job = lane_job(
            rt.connection, rt.queue.name, self.handler.name, timeout=rt.settings.job_timeout
        )
        with rt.connection.pipeline(transaction=True) as pipe:
            if delay > 0:
                schedule(rt.queue, job, now() + timedelta(seconds=delay), pipe)
            else:
                rt.queue.enqueue_job(job, pipeline=pipe)
            rt.script("lanes_transfer")(
                keys=[k.job_lanes(job.id)] + [k.lane_state(self.handler.name, s) for s in subjects],
                args=[self.job_id, job.id, *subjects],
                client=pipe,
            )
            pipe.execute()


#: A handler run's outcome as its span says it.
_SPAN_OUTCOMES = {"dead": "dead_lettered", "retry": "retrying"}


class Lane(LaneFailures):
    """One lane's pass within a job."""

    def __init__(self, job: LaneJob, subject: str) -> None:
        self.job = job
        self.rt = job.rt
        self.handler = job.handler
        self.subject = subject
        self.lane = self.rt.keys.lane(self.handler.name, subject)
        self.state = self.rt.keys.lane_state(self.handler.name, subject)
        self.log = log.bind(handler=self.handler.name, subject=subject, job_id=job.job_id)
        # The run log of the head event's attempt under way (store/runlog.py):
        # when it started (epoch s) and took; the finished run ``next`` writes.
        self.attempt_started: float | None = None
        self.attempt_took = 0.0
        self.finished_run = ""

    async def run(self) -> None:
        """Process events until the lane is empty, yields, or must wait."""
        rt, stats = self.rt, self.job.stats
        stats["lanes"] += 1
        acked = ""
        processed = 0
        reply: Any = self.job.heads.pop(self.subject, None)
        while True:
            reply = reply or self.next(acked)
            acked = ""
            status = text(reply[0])
            if status != "event":  # "empty" (released) or "lost" (not ours)
                return
            key, body, attempts, found = text(reply[1]), reply[2], int(reply[3]), int(reply[4])
            store, traceparent = text(reply[5]) or None, text(reply[6])
            if processed >= rt.settings.lane_batch or self.job.out_of_time():
                self.job.hand_off([self.subject], delay=0.0)
                return
            outcome = await self.process(key, body if found else None, attempts, store, traceparent)
            reply = None
            rt.metrics.maybe_flush(rt.connection)
            if outcome == "ok":
                acked = key
                processed += 1
                stats["processed"] += 1
            elif outcome == "dead":
                stats["dead"] += 1
            elif outcome == "parked":
                stats["parked"] += 1
                return
            elif outcome == "throttled":  # the lane now belongs to a scheduled job
                stats["throttled"] += 1
                return
            else:  # "retry": the lane now belongs to a scheduled job
                stats["retry_scheduled"] += 1
                return

    async def process(
        self,
        key: str,
        body: bytes | None,
        attempts: int,
        store: str | None = None,
        traceparent: str = "",
    ) -> str:
        """Run the handler on one event: ``"ok"``, ``"dead"``, ``"parked"``, ``"retry"``
        or ``"throttled"``; in a span, a child of the receiving one, when traced."""
        if not tracing.enabled():
            outcome = await self._process(key, body, attempts, store, None)
            return "ok" if outcome == "skipped" else outcome
        attributes = {
            tracing.HANDLER: self.handler.name,
            tracing.RETURN_ID: self.subject,
            tracing.EVENT_KEY: key,
            tracing.ATTEMPT: attempts + 1,
            tracing.STORE: store,
        }
        attributes = {k: v for k, v in attributes.items() if v is not None}
        with tracing.handling(traceparent, attributes) as span:
            outcome = await self._process(key, body, attempts, store, span)
            tracing.annotate(span, {tracing.OUTCOME: _SPAN_OUTCOMES.get(outcome, outcome)})
        return "ok" if outcome == "skipped" else outcome

    async def _process(
        self, key: str, body: bytes | None, attempts: int, store: str | None, span: Any
    ) -> str:
        log = self.log.bind(event_key=key)
        self.attempt_started, self.attempt_took = None, 0.0
        if body is None:
            tracing.failed(span, None, "the event body is gone")
            return self.dead_letter(key, "event_missing", "the event body is gone", "", attempts)
        event = self.read(key, body, store)
        if isinstance(event, str):
            # Deterministic: retrying cannot help. Kept for replay after an upgrade.
            tracing.failed(span, None, event)
            return self.dead_letter(key, "invalid_event", event, "", attempts)
        log = log.bind(event_type=str(event.type))
        tracing.annotate(span, {tracing.EVENT_TYPE: str(event.type)})
        if self.handler.latest_only and self.is_stale(event):
            self.rt.connection.incr(self.rt.keys.skipped(self.handler.name))
            log.info("event_skipped_stale", updated_at=str(event.updated_at))
            self.job.stats["skipped"] += 1
            self.ran(event, "skipped", None)
            self.finished_run = runlog.pack("skipped", attempts, time.time(), 0.0)
            return "skipped"
        attempt = attempts + 1
        context = HandlerContext(
            handler=self.handler.name,
            subject=self.subject,
            event_key=key,
            attempt=attempt,
            log=get_logger(self.handler.name).bind(
                handler=self.handler.name, subject=self.subject, event_key=key, attempt=attempt
            ),
            state=self.rt.state,
        )
        holder = f"{self.job.job_id}:{self.subject}"
        wait = self.rt.take_permit(self.handler, holder)
        if wait is not None:
            # Over its max_concurrency or rate_limit: the lane waits as a
            # scheduled job, holding nothing meanwhile; the attempt is not counted.
            self.job.hand_off([self.subject], delay=wait)
            log.debug("handler_throttled", retry_in=round(wait, 3))
            return "throttled"
        started = time.perf_counter()
        self.attempt_started = began = time.time()
        try:
            await self.rt.call(self.handler, event, context)
        except Exception as exc:
            self.attempt_took = time.perf_counter() - started
            self.ran(event, "error", started, exc)
            tracing.failed(span, exc, f"{type(exc).__name__}: {exc}")
            return self.failed(key, exc, log, event)
        finally:
            self.rt.release_permit(holder)
        self.ran(event, "ok", started)
        took = time.perf_counter() - started
        self.finished_run = runlog.pack("ok", attempt, began, took)
        if self.handler.latest_only and event.updated_at is not None:
            # Only this lane's owner writes it, one event at a time: no race.
            self.rt.connection.set(
                self.rt.keys.latest(self.handler.name, self.subject),
                event.updated_at.timestamp(),
                ex=self.rt.settings.retention,
            )
        succeeded = log.info if self.rt.settings.log_successes else log.debug
        succeeded("handler_succeeded", seconds=round(took, 4))
        return "ok"

    def read(self, key: str, body: bytes, store: str | None) -> ReturnEvent | str:
        """The event a handler receives, or why this handler cannot receive it."""
        try:
            # Trusted: the receiver checked the bytes (UTF-8, depth, routing).
            event = decode_event(unpack_body(body), key=key, store=store)
        except (ValueError, zlib.error) as exc:  # UnroutableEvent among them
            return str(exc)
        if self.handler.strict and event.schema_errors:
            # The handler opted out of field-level tolerance (``strict=True``).
            return "off-schema: " + "; ".join(event.schema_errors[:20])
        return event

    def next(self, acked: str = "") -> Any:
        """``lane_next.lua``: acknowledge ``acked`` (if any) and take the head, or release.

        The acknowledged event's run (ok or skipped) is logged in the same call.
        """
        rt = self.rt
        run, self.finished_run = (self.finished_run if acked else ""), ""
        return rt.script("lane_next")(
            keys=[self.lane, self.state, rt.keys.waiting, rt.keys.waiting_events],
            args=[
                self.job.job_id,
                acked,
                rt.keys.event_prefix,
                rt.settings.retention,
                run,
                self.handler.name,
                rt.keys.base,
                rt.keys.body_prefix,
            ],
        )

    def dead_letter_all(self, reason: str, error: str) -> int:
        """Dead-letter every event of the lane, oldest first, then release it; how many."""
        count = 0
        while True:
            reply = self.next()
            if text(reply[0]) != "event":  # empty: released; lost: not ours
                return count
            self.dead_letter(text(reply[1]), reason, error, "", int(reply[3]))
            count += 1

    def ran(
        self,
        event: ReturnEvent,
        outcome: str,
        started: float | None,
        error: BaseException | None = None,
    ) -> None:
        """Count a handler call (``started``: its ``perf_counter``; None: not called)."""
        seconds = 0.0 if started is None else time.perf_counter() - started
        self.rt.metrics.handler_run(self.handler.name, outcome, seconds)
        if self.rt.observer is not None:
            self.rt.observer(self.handler.name, event, outcome, error)

    def is_stale(self, event: ReturnEvent) -> bool:
        """Whether a newer snapshot of the return was already handled (``latest_only``)."""
        if event.updated_at is None:
            return False
        newest = self.rt.connection.get(self.rt.keys.latest(self.handler.name, self.subject))
        return newest is not None and event.updated_at.timestamp() < float(text(newest))
