"""One lane's pass within a lane job: take the head event, run the handler, acknowledge, repeat.

Strictly sequential: the return's next event is taken only once this one
has succeeded, been skipped, or been dead-lettered (guarantee 4). Every Redis
call here is made on the event loop through the runtime's shared round trips
(``store/batching.py``); what blocks (a hand-off through RQ's API, a
failure's bookkeeping) runs on the runtime's I/O threads. Failures are in
``failures.py``; the job that runs the lanes is in ``lanes.py``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Protocol

from .. import tracing
from ..logs import get_logger
from ..models import ReturnEvent, decode_event
from ..store import runlog
from ..store.events import unpack_body
from ..store.replies import text
from .calls import NotStarted
from .context import HandlerContext
from .failures import LaneFailures
from .handlers import Handler
from .runtime import Runtime

log = get_logger("redo_hooks.dispatch.lanes")

#: A handler run's outcome as its span says it.
_SPAN_OUTCOMES = {"dead": "dead_lettered", "retry": "retrying"}


class JobPass(Protocol):
    """What a lane needs of the job running it (``lanes.LaneJob``)."""

    rt: Runtime
    handler: Handler
    #: This run's owner token (fences out an earlier run of the same job).
    job_id: str
    retries: int
    stats: dict[str, int]
    heads: dict[str, list[Any]]
    handing_on: list[str]
    #: Quarantined lanes that ran an event without a crash: back to the queue.
    cleared: list[str]
    #: A job of the quarantine queue (lanes a crashed process left).
    quarantined: bool

    def out_of_time(self) -> bool: ...

    def hand_off(
        self, subjects: Sequence[str], delay: float, *, throttled: bool = False
    ) -> None: ...


class Lane(LaneFailures):
    """One lane's pass within a job."""

    def __init__(self, job: JobPass, subject: str) -> None:
        self.job = job
        self.rt = job.rt
        self.handler = job.handler
        self.subject = subject
        self.lane = self.rt.keys.lane(self.handler.name, subject)
        self.state = self.rt.keys.lane_state(self.handler.name, subject)
        self.log = log.bind(handler=self.handler.name, return_id=subject, job_id=job.job_id)
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
            reply = reply or await self.next(acked)
            acked = ""
            status = text(reply[0])
            if status != "event":  # "empty" (released) or "lost" (not ours)
                return
            key, body, attempts, found = text(reply[1]), reply[2], int(reply[3]), int(reply[4])
            store, traceparent = text(reply[5]) or None, text(reply[6])
            leaving = self.leaving(processed)
            if leaving is not None:  # its next event is not started here
                leaving.append(self.subject)
                return
            outcome = await self.process(key, body if found else None, attempts, store, traceparent)
            reply = None
            await rt.flush_metrics(unless_recent=True)
            if outcome == "ok":
                acked = key
                processed += 1
                stats["processed"] += 1
                if self.job.quarantined and processed == 1:  # cleared of the crash
                    await rt.batch.command("HDEL", self.state, "crashes")
            elif outcome == "dead":
                stats["dead"] += 1
            elif outcome == "parked":
                stats["parked"] += 1
                return
            elif outcome == "not_started":  # stopping: the job hands the lane on
                self.job.handing_on.append(self.subject)
                return
            elif outcome == "throttled":  # the lane now belongs to a scheduled job
                stats["throttled"] += 1
                return
            else:  # "retry": the lane now belongs to a scheduled job
                stats["retry_scheduled"] += 1
                return

    def leaving(self, processed: int) -> list[str] | None:
        """Where this lane goes before its next event, if it must go; None: it goes on.

        A quarantined lane that ran an event alone, its process alive, is
        cleared: back among the others. Any lane after ``lane_batch`` events,
        the job's time slice, or a stop: on, together with the job's others.
        """
        job: JobPass = self.job
        if job.quarantined and processed:
            return job.cleared
        if processed >= self.rt.settings.lane_batch or job.out_of_time():
            return job.handing_on
        return None

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
        event = self.read(key, body, store)
        if isinstance(event, tuple):
            # Deterministic: retrying cannot help. Kept for replay after an upgrade.
            reason, error = event
            tracing.failed(span, None, error)
            return await self.rt.off_loop(self.dead_letter, key, reason, error, "", attempts)
        log = log.bind(event_type=str(event.type))
        tracing.annotate(span, {tracing.EVENT_TYPE: str(event.type)})
        if self.handler.latest_only and await self.is_stale(event):
            await self.rt.batch.command("INCR", self.rt.keys.skipped(self.handler.name))
            log.info("event_skipped_stale", updated_at=str(event.updated_at))
            self.job.stats["skipped"] += 1
            self.ran(event, "skipped", None)
            self.finished_run = runlog.pack("skipped", attempts, time.time(), 0.0)
            return "skipped"
        attempt = attempts + 1
        context = HandlerContext(
            handler=self.handler.name,
            return_id=self.subject,
            event_key=key,
            attempt=attempt,
            log=get_logger(self.handler.name).bind(
                handler=self.handler.name, return_id=self.subject, event_key=key, attempt=attempt
            ),
            state=self.rt.state,
            records=self.rt.records,
        )
        holder = f"{self.job.job_id}:{self.subject}"
        wait = await self.rt.take_permit(self.handler, holder)
        if wait is not None:
            # Over its max_concurrency or rate_limit: the lane waits as a
            # scheduled job, holding nothing meanwhile; the attempt is not counted.
            await self.rt.off_loop(
                functools.partial(self.job.hand_off, [self.subject], wait, throttled=True)
            )
            self.rt.metrics.throttled(self.handler.name)
            log.debug("handler_throttled", retry_in=round(wait, 3))
            return "throttled"
        started = time.perf_counter()
        self.attempt_started = began = time.time()
        try:
            await self.rt.call(self.handler, event, context)
        except NotStarted:
            return "not_started"  # the attempt never began: not counted
        except Exception as exc:
            self.attempt_took = time.perf_counter() - started
            self.ran(event, "error", started, exc)
            tracing.failed(span, exc, f"{type(exc).__name__}: {exc}")
            return await self.rt.off_loop(self.failed, key, exc, log, event)
        finally:
            await self.rt.release_permit(holder)
        self.ran(event, "ok", started)
        took = time.perf_counter() - started
        self.finished_run = runlog.pack("ok", attempt, began, took)
        if self.handler.latest_only and event.updated_at is not None:
            # Only this lane's owner writes it, one event at a time: no race.
            await self.rt.batch.command(
                "SET",
                self.rt.keys.latest(self.handler.name, self.subject),
                event.updated_at.timestamp(),
                "EX",
                self.rt.settings.retention,
            )
        succeeded = log.info if self.rt.settings.log_successes else log.debug
        succeeded("handler_succeeded", seconds=round(took, 4))
        return "ok"

    def read(
        self, key: str, body: bytes | None, store: str | None
    ) -> ReturnEvent | tuple[str, str]:
        """The event a handler receives, or why it cannot: (dead-letter reason, error)."""
        if body is None:
            return "event_missing", "the event body is gone"
        try:
            # Trusted: the receiver checked the bytes (UTF-8, depth, routing).
            event = decode_event(unpack_body(body), key=key, store=store)
        except ValueError as exc:  # UnroutableEvent among them
            return "invalid_event", str(exc)
        if self.handler.strict and event.schema_errors:
            # The handler opted out of field-level tolerance (``strict=True``).
            return "invalid_event", "off-schema: " + "; ".join(event.schema_errors[:20])
        return event

    async def next(self, acked: str = "") -> Any:
        """``lane_next.lua``: acknowledge ``acked`` (if any) and take the head, or release.

        The acknowledged event's run (ok or skipped) is logged in the same call.
        """
        keys, args = self._next_call(acked)
        return await self.rt.lane_script("lane_next", keys, args)

    def next_blocking(self) -> Any:
        """:meth:`next` from a thread (nothing to acknowledge)."""
        keys, args = self._next_call("")
        return self.rt.script("lane_next")(keys=keys, args=args)

    def _next_call(self, acked: str) -> tuple[list[Any], list[Any]]:
        rt = self.rt
        run, self.finished_run = (self.finished_run if acked else ""), ""
        return (
            [self.lane, self.state, rt.keys.waiting, rt.keys.waiting_events],
            [
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
            reply = self.next_blocking()
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

    async def is_stale(self, event: ReturnEvent) -> bool:
        """Whether a newer snapshot of the return was already handled (``latest_only``)."""
        if event.updated_at is None:
            return False
        newest = await self.rt.batch.command(
            "GET", self.rt.keys.latest(self.handler.name, self.subject)
        )
        return newest is not None and event.updated_at.timestamp() < float(text(newest))
