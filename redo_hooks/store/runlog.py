"""The run log: what each handler did with each stored event.

A run is one field of the event's own hash, ``r:<handler>``, so it lives and
expires with the event (``retention``) and costs no key of its own::

    <outcome>|<attempts>|<started, epoch ms>|<duration ms>|<last error summary>

``w`` alone marks a handler the event was routed to that has not finished a
run yet (written by ``ingest.lua``; a retry or a replay writes it again). The
worker writes the outcome in the Lua call it already makes for that outcome
(``lane_next``, ``lane_fail``, ``lane_dead``, ``lane_park``; see
``lua/_runlog.lua``): no extra round trip. An event routed to no handler is
``unhandled``: it has no run, and is in that outcome's index.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .replies import text

Outcome = Literal["waiting", "ok", "retrying", "dead", "parked", "skipped"]

#: Outcomes a run can end a step with, as stored.
OUTCOMES: tuple[Outcome, ...] = ("ok", "retrying", "dead", "parked", "skipped")
#: What the search offers: run outcomes, ``waiting``, and ``unhandled`` (no handler).
SEARCHABLE = ("ok", "retrying", "dead", "parked", "skipped", "waiting", "unhandled")
#: Outcomes with an index of their own (``<p>:out:<outcome>``); ``ok`` and
#: ``waiting`` are found from the time index instead (most events are ok).
INDEXED = ("retrying", "dead", "parked", "skipped", "unhandled")

FIELD_PREFIX = "r:"
WAITING = "w"
#: The error summary kept per run; the dead letter keeps the whole traceback.
ERROR_CHARS = 120


def bucket_seconds(retention: int) -> int:
    """Width of the time buckets of the return and order indexes.

    A quarter of the retention, at most a day: a lookup reads about
    ``retention / width + 2`` buckets (at most 9 for a week), and a bucket
    outlives its last event by at most one width.
    """
    return max(1, min(86_400, retention // 4))


def buckets(now: float, retention: int) -> range:
    """The buckets that may still exist at ``now`` (each expires ``retention`` after its end).

    An event that waited in lanes longer than that is no longer found by
    return or order, though it is still stored (the time index finds it).
    """
    width = bucket_seconds(retention)
    first = int((now - retention) // width) - 1
    return range(max(0, first), int(now // width) + 1)


def field(handler: str) -> str:
    """The event-hash field holding ``handler``'s run."""
    return FIELD_PREFIX + handler


def pack(outcome: Outcome, attempts: int, started: float, duration: float, error: str = "") -> str:
    """A run as stored (``started``: epoch s; ``duration``: s)."""
    return f"{outcome}|{attempts}|{attempt(started, duration, error)}"


def attempt(started: float, duration: float, error: str = "") -> str:
    """A run's last three parts: what ``lane_fail.lua`` appends to the attempts it counts."""
    summary = " ".join(error.split())[:ERROR_CHARS]
    return f"{round(started * 1000)}|{round(duration * 1000)}|{summary}"


@dataclass(frozen=True, slots=True)
class Run:
    """One handler's run on one event."""

    handler: str
    outcome: Outcome
    attempts: int = 0
    #: When the last attempt started (epoch s), ``None`` before any.
    started: float | None = None
    #: How long the last attempt took (s).
    duration: float | None = None
    error: str = ""

    @property
    def finished(self) -> float | None:
        """When the last attempt ended (epoch s)."""
        if self.started is None or self.duration is None:
            return None
        return self.started + self.duration

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (JSON)."""
        return {
            "handler": self.handler,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "started": self.started,
            "finished": self.finished,
            "duration": self.duration,
            "error": self.error,
        }


def unpack(handler: str, value: Any) -> Run:
    """A stored run; an unreadable one reads as waiting."""
    raw = text(value)
    parts = raw.split("|", 4)
    if len(parts) != 5 or parts[0] not in OUTCOMES:
        return Run(handler, "waiting")
    outcome, attempts, started, duration, error = parts
    return Run(
        handler,
        outcome,  # type: ignore[arg-type]  # checked against OUTCOMES above
        int(attempts),
        int(started) / 1000,
        int(duration) / 1000,
        error,
    )


def runs(stored: Mapping[Any, Any]) -> list[Run]:
    """The runs in an event hash (``HGETALL``), in handler-name order."""
    found = []
    for name, value in stored.items():
        key = text(name)
        if key.startswith(FIELD_PREFIX):
            found.append(unpack(key[len(FIELD_PREFIX) :], value))
    return sorted(found, key=lambda run: run.handler)
