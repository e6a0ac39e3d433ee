"""What a worker runs: one RQ job drains one lane (a handler's events for one return).

A lane is the list ``<p>:lane:<handler>:<subject>``; exactly one RQ job owns
it at a time (``lanestate.owner``), so the handler sees that return's events
one after another in arrival order (guarantee 4), while other lanes — other
returns, other handlers — run in parallel on other workers (guarantee 5).

The job loops: take the head event, run the handler, acknowledge (pop) it and
take the next head in one script call (``lane_next.lua``). It stops when:

* the lane is empty — ownership is released atomically with the emptiness
  check, so the next ingest creates a fresh job;
* it has run ``lane_batch`` events — it hands the lane to a new job at the back
  of the queue, so one busy return cannot monopolise a worker;
* the handler raised — the attempt is counted; with retries left, the lane is
  handed to a job scheduled after the backoff (later events of this return
  wait for this handler only); with none left, the event is dead-lettered and
  the lane moves on;
* another job owns the lane (``lost``) — it stops without touching anything.

A crash mid-handler leaves the job in RQ's StartedJobRegistry; RQ re-queues
the abandoned job (it carries ``Retry``) and, still the owner, it resumes at
the same head event: at-least-once (guarantee 6).
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import WatchError
from rq import Queue
from rq.job import get_current_job
from rq.registry import ScheduledJobRegistry
from rq.utils import now

from . import scripts
from .errors import ConfigurationError
from .jobspec import lane_job
from .keys import Keys
from .models import ReturnEvent
from .registry import Handler, Registry
from .settings import Settings

log = structlog.get_logger("redo_hooks.jobs")

# A lane job yields the worker after this long even if its batch is not done.
TIME_SLICE = 5.0


@dataclass
class Runtime:
    """What lane jobs need in a worker process, built once by the worker."""

    registry: Registry
    settings: Settings
    connection: Redis
    queue: Queue
    keys: Keys = field(init=False)
    scheduled_key: str = field(init=False)
    loop: asyncio.AbstractEventLoop = field(init=False)
    _scripts: dict[str, Script] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.key_prefix)
        self.scheduled_key = str(ScheduledJobRegistry(queue=self.queue).key)  # type: ignore[no-untyped-call]
        self.loop = asyncio.new_event_loop()
        self._scripts = {
            name: self.connection.register_script(scripts.source(name))
            for name in ("lane_next", "lane_fail", "lane_dead")
        }

    def script(self, name: str) -> Script:
        """A registered Lua script."""
        return self._scripts[name]


_runtime: Runtime | None = None


def bind(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one lane jobs in this process use.

    RQ imports job functions by dotted name and passes only their arguments,
    so the worker binds its runtime here before it starts taking jobs.
    """
    global _runtime
    _runtime = runtime


def run_lane(handler_name: str, subject: str) -> dict[str, int]:
    """RQ job function: drain the ``(handler, subject)`` lane. See module docs."""
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
        raise ConfigurationError(
            f"no handler named {handler_name!r} is registered in this worker's app; "
            "a deploy removed or renamed it while events were waiting"
        )
    return LaneRun(_runtime, handler, subject, job.id).run()


class LaneRun:
    """One job's pass over one lane."""

    def __init__(self, rt: Runtime, handler: Handler, subject: str, job_id: str) -> None:
        self.rt = rt
        self.handler = handler
        self.subject = subject
        self.job_id = job_id
        self.lane = rt.keys.lane(handler.name, subject)
        self.state = rt.keys.lane_state(handler.name, subject)
        self.retries = rt.settings.retries if handler.retries is None else handler.retries
        self.log = log.bind(handler=handler.name, subject=subject, job_id=job_id)

    def run(self) -> dict[str, int]:
        """Process events until the lane is empty, yields, or must wait."""
        rt, stats = self.rt, {"processed": 0, "dead": 0, "retry_scheduled": 0}
        acked = ""
        started = time.monotonic()
        next_script = rt.script("lane_next")
        while True:
            reply = next_script(
                keys=[self.lane, self.state],
                args=[self.job_id, acked, rt.keys.event_prefix, rt.settings.retention],
            )
            acked = ""
            status = _text(reply[0])
            if status == "lost":
                self.log.info("lane_not_owned")
                return stats
            if status == "empty":
                return stats
            key, body, attempts, found = _text(reply[1]), reply[2], int(reply[3]), int(reply[4])
            if stats["processed"] >= rt.settings.lane_batch or (
                time.monotonic() - started > TIME_SLICE
            ):
                self.hand_off(delay=0.0)
                return stats
            outcome = self.process(key, body if found else None, attempts)
            if outcome == "ok":
                acked = key
                stats["processed"] += 1
            elif outcome == "dead":
                stats["dead"] += 1
            else:  # "retry": the lane now belongs to a scheduled job
                stats["retry_scheduled"] += 1
                return stats

    def process(self, key: str, body: bytes | None, attempts: int) -> str:
        """Run the handler on one event: ``"ok"``, ``"dead"`` or ``"retry"``."""
        log = self.log.bind(event_key=key)
        if body is None:
            return self.dead_letter(key, "event_missing", "the event body is gone", "", attempts)
        try:
            event = ReturnEvent.from_raw(orjson.loads(body), key)
        except (ValidationError, orjson.JSONDecodeError) as exc:
            # Deterministic: retrying cannot help. Kept for replay after an upgrade.
            return self.dead_letter(key, "invalid_event", str(exc), "", attempts)
        log = log.bind(event_type=str(event.type))
        try:
            if self.handler.is_async:
                self.rt.loop.run_until_complete(self.handler.func(event))
            else:
                self.handler.func(event)
        except Exception as exc:
            return self.failed(key, exc, log)
        log.debug("handler_succeeded")
        return "ok"

    def failed(self, key: str, exc: Exception, log: Any) -> str:
        """Count a failed attempt; schedule a retry or dead-letter the event."""
        attempts = int(self.rt.script("lane_fail")(keys=[self.state], args=[self.job_id]))
        if attempts < 0:
            return "retry"  # lost the lane meanwhile: stop, the owner carries on
        error = f"{type(exc).__name__}: {exc}"
        if attempts <= self.retries:
            delay = backoff(attempts, self.rt.settings)
            log.warning(
                "handler_failed_will_retry", attempt=attempts, retry_in=round(delay, 3), error=error
            )
            self.hand_off(delay=delay)
            return "retry"
        log.error("handler_failed_dead_lettered", attempts=attempts, error=error)
        return self.dead_letter(key, "handler_failed", error, traceback.format_exc(), attempts)

    def dead_letter(self, key: str, reason: str, error: str, tb: str, attempts: int) -> str:
        """Move the head event to the dead-letter registry; the lane moves on."""
        dead_id = uuid.uuid4().hex
        record = {
            "id": dead_id,
            "reason": reason,
            "handler": self.handler.name,
            "subject": self.subject,
            "event_key": key,
            "attempts": attempts,
            "error": error,
            "traceback": tb,
            "dead_at": time.time(),
        }
        k = self.rt.keys
        moved = self.rt.script("lane_dead")(
            keys=[self.lane, self.state, k.dead, k.dead_ids],
            args=[self.job_id, key, dead_id, orjson.dumps(record), time.time()],
        )
        if int(moved):
            self.log.error("event_dead_lettered", event_key=key, reason=reason, dead_id=dead_id)
        return "dead"

    def hand_off(self, delay: float) -> bool:
        """Give the lane to a new job (now, or after ``delay`` seconds), atomically.

        The new job is enqueued (or scheduled) and made the owner in one
        MULTI/EXEC guarded by WATCH on the lane state, so the lane is never
        without an owner job nor with two.
        """
        rt = self.rt
        with rt.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.state)  # type: ignore[no-untyped-call]
                    if _text(pipe.hget(self.state, "owner")) != self.job_id:
                        return False
                    job = lane_job(
                        rt.connection,
                        rt.queue.name,
                        self.handler.name,
                        self.subject,
                        timeout=rt.settings.job_timeout,
                    )
                    pipe.multi()
                    if delay > 0:
                        when = now() + timedelta(seconds=delay)
                        rt.queue.schedule_job(job, when, pipeline=pipe)
                        # rq 2.12's ScheduledJobRegistry.schedule ignores the
                        # pipeline (registry.py:527): repeat its ZADD inside ours
                        # so the schedule commits with the ownership change.
                        pipe.zadd(rt.scheduled_key, {job.id: int(when.timestamp())})
                    else:
                        rt.queue.enqueue_job(job, pipeline=pipe)
                    pipe.hset(self.state, "owner", job.id)
                    pipe.execute()
                    return True
                except WatchError:
                    continue


def backoff(attempt: int, settings: Settings) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped, with jitter."""
    if settings.backoff <= 0:
        return 0.0
    ceiling = min(settings.backoff_cap, settings.backoff * 2 ** (attempt - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
