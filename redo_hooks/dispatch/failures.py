"""A lane's failures: a handler's error counted and retried, or the event dead-lettered.

Mixed into ``lanes.Lane`` (the lane of one handler for one return); kept
apart so the lane's happy path reads on its own.
"""

from __future__ import annotations

import time
import traceback
import uuid
from typing import Any

import orjson

from ..backoff import exponential
from ..errors import GiveUp, Retry
from ..models import ReturnEvent
from ..store import runlog
from ..store.issues import fingerprint
from ..store.replies import text
from .callbacks import Failure, FailureKind
from .handlers import Handler
from .runtime import Runtime


class LaneFailures:
    """``failed`` and ``dead_letter`` for ``lanes.Lane``."""

    rt: Runtime
    job: Any  # lanes.LaneJob: its run's owner token, retries and hand-off
    handler: Handler
    subject: str
    lane: str
    state: str
    log: Any
    attempt_started: float | None
    attempt_took: float

    def failed(self, key: str, exc: Exception, log: Any, event: ReturnEvent | None = None) -> str:
        """Count a failed attempt; schedule a retry or dead-letter the event.

        Blocking (sync Redis, RQ's API): lanes call it off the loop.
        """
        error = f"{type(exc).__name__}: {exc}"
        k = self.rt.keys
        run = runlog.attempt(self.attempt_started or time.time(), self.attempt_took, error)
        reply = self.rt.script("lane_fail")(
            keys=[self.state],
            args=[
                self.job.job_id,
                error,
                key,
                self.handler.name,
                k.base,
                run,
            ],
        )
        attempts, first_error = int(reply[0]), text(reply[1])
        if attempts < 0:
            return "retry"  # lost the lane meanwhile: stop, the owner carries on
        retries = self.job.retries
        if attempts <= retries and not isinstance(exc, GiveUp):
            settings = self.rt.settings
            base = settings.backoff if self.handler.backoff is None else self.handler.backoff
            delay = exponential(attempts, base, settings.backoff_cap)
            if isinstance(exc, Retry):
                delay = exc.after
            log.warning(
                "handler_failed_will_retry", attempt=attempts, retry_in=round(delay, 3), error=error
            )
            self.job.hand_off([self.subject], delay=delay)
            self.rt.metrics.retry(self.handler.name)
            self.notify(
                "attempt_failed", key, event, exc, error=error, attempt=attempts, retry_in=delay
            )
            return "retry"
        tb = "".join(traceback.format_exception(exc))  # (on an I/O thread: no exc_info here)
        park = self.handler.park
        log.error(
            "handler_failed_lane_parked" if park else "handler_failed_dead_lettered",
            attempts=attempts,
            error=error,
        )
        reason = "handler_gave_up" if isinstance(exc, GiveUp) else "handler_failed"
        return self.dead_letter(
            key,
            reason,
            error,
            tb,
            attempts,
            first_error=first_error,
            park=park,
            exc=exc,
            event=event,
        )

    def dead_letter(
        self,
        key: str,
        reason: str,
        error: str,
        tb: str,
        attempts: int,
        *,
        first_error: str | None = None,
        park: bool = False,
        exc: BaseException | None = None,
        event: ReturnEvent | None = None,
    ) -> str:
        """Move the head event to the dead-letter registry; the lane moves on.

        With ``park``, the event stays at the head and the lane is held until
        an operator retries or drops the dead letter (``lane_park.lua``).
        """
        dead_id = uuid.uuid4().hex
        now = time.time()  # the record's dead_at and its index score: one reading
        issue, title = fingerprint(self.handler.name, error)
        record = {
            "id": dead_id,
            "reason": reason,
            "handler": self.handler.name,
            "subject": self.subject,
            "event_key": key,
            "attempts": attempts,
            "first_error": first_error or error,
            "error": error,
            "traceback": tb,
            "dead_at": now,
            "parked": park,
            "fingerprint": issue,
        }
        k = self.rt.keys
        started = self.attempt_started or now
        run = runlog.pack("parked" if park else "dead", attempts, started, self.attempt_took, error)
        moved = self.rt.script("lane_park" if park else "lane_dead")(
            keys=[self.lane, self.state, k.dead, k.dead_ids, k.waiting, k.waiting_events]
            + ([k.parked] if park else []),
            args=[
                self.job.job_id,
                key,
                dead_id,
                orjson.dumps(record),
                now,
                k.event_prefix,
                run,
                self.handler.name,
                k.base,
                issue,
                title,
                self.subject,
            ],
        )
        if int(moved):
            self.rt.metrics.dead_letter(self.handler.name)
            self.log.error(
                "event_dead_lettered", event_key=key, reason=reason, dead_id=dead_id, parked=park
            )
            kind: FailureKind = "parked" if park else "dead_lettered"
            self.notify(
                kind, key, event, exc, error=error, attempt=attempts, dead_letter_id=dead_id
            )
        return "parked" if park else "dead"

    def notify(
        self,
        kind: FailureKind,
        key: str,
        event: ReturnEvent | None,
        exc: BaseException | None,
        *,
        error: str,
        attempt: int,
        retry_in: float | None = None,
        dead_letter_id: str | None = None,
    ) -> None:
        """Hand the failure to the ``@hooks.on_failure`` callbacks (they run beside the lane)."""
        if not self.rt.failures.callbacks:
            return
        self.rt.failures.notify(
            Failure(
                kind=kind,
                handler=self.handler.name,
                return_id=self.subject,
                event_key=key,
                event=event,
                error=exc,
                error_text=error,
                attempt=attempt,
                retry_in=retry_in,
                dead_letter_id=dead_letter_id,
            )
        )
