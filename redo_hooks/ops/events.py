"""Finding stored events and what each handler did with them (the run log).

Reads only, and never scans keys. A search by return or order reads that
return's (or order's returns') events from the time buckets of the return
and order indexes (one ``ZRANGEBYLEX`` per bucket, in one round trip): a
return has few events. Any other search walks one sorted index, newest
first — the outcome's, the type's, or the time index (``<p>:events``) —
reading a page of candidates per round trip and keeping those every other
filter accepts. So a page costs about the same with a thousand stored events
or a million.

Pagination is by cursor (the last row's score and key), so pages never
shift while events arrive. A search that would have to read more than
``scan_limit`` candidates to fill a page stops there and hands back a
cursor: the page may be short, never slow.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Sequence
from dataclasses import InitVar, dataclass
from typing import Any, cast

import orjson
from redis import Redis

from ..errors import ConfigurationError, deprecated
from ..models import event_kind
from ..store import runlog
from ..store.events import unpack_body
from ..store.keys import Keys
from ..store.replies import text
from ..store.runlog import Run
from .paging import split_cursor

#: Candidates read per round trip.
CHUNK = 200
#: Most returns of one order that a search follows.
ORDER_RETURNS = 100


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What an event search selects; every field given must match."""

    return_id: str | None = None
    #: The order's id or its name (``#1001``; ``1001`` finds it too).
    order: str | None = None
    #: An event's name, ``return.created``.
    event_name: str | None = None
    #: A run outcome (``runlog.SEARCHABLE``): some handler's run has it.
    outcome: str | None = None
    since: float | None = None
    until: float | None = None
    #: The 0.2 name of ``event_name``; deprecated.
    event_type: InitVar[str | None] = None

    def __post_init__(self, event_type: str | None) -> None:
        if event_type is not None:  # the 0.2 name
            deprecated("EventFilter(event_type=...)", "EventFilter(event_name=...)")
            object.__setattr__(self, "event_name", event_type)
        if self.event_name is not None:
            event_kind(self.event_name)  # ConfigurationError listing the valid names
        if self.outcome is not None and self.outcome not in runlog.SEARCHABLE:
            raise ConfigurationError(
                f"unknown outcome {self.outcome!r}: use one of {', '.join(runlog.SEARCHABLE)}"
            )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored event's record: routing fields and its runs (not its body)."""

    key: str
    #: The body's ``type`` (``"created"``); :attr:`name` is the event's name.
    type: str
    return_id: str
    received_at: float
    store: str | None
    runs: list[Run]
    #: The handlers still holding it (0: done; its body expires after ``retention``).
    pending: int = 0
    #: When a replay or a dead letter's retry last queued it again (epoch s).
    requeued_at: float | None = None
    #: Its order's name (``#1001``), else its id; None if the event names none.
    order: str | None = None

    @property
    def name(self) -> str:
        """The event's name, ``return.<type>``."""
        return f"return.{self.type}"

    @property
    def subject(self) -> str:
        """Deprecated: :attr:`return_id`."""
        deprecated("StoredEvent.subject", "StoredEvent.return_id")
        return self.return_id

    @property
    def outcome(self) -> str:
        """The event's overall outcome: the worst of its runs, ``unhandled`` without any."""
        if not self.runs:
            return "unhandled"
        order = ("parked", "dead", "retrying", "waiting", "skipped", "ok")
        return min((run.outcome for run in self.runs), key=order.index)

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (JSON)."""
        return {
            "key": self.key,
            "name": self.name,
            "type": self.type,
            "return_id": self.return_id,
            "received_at": self.received_at,
            "requeued_at": self.requeued_at,
            "order": self.order,
            "store": self.store,
            "outcome": self.outcome,
            "runs": [run.to_dict() for run in self.runs],
        }


@dataclass(frozen=True, slots=True)
class EventDetail(StoredEvent):
    """A stored event with its body as received."""

    body: bytes = b""

    def pretty_body(self) -> str:
        """The body as indented JSON (the bytes as received if they do not parse)."""
        try:
            return orjson.dumps(orjson.loads(self.body), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            return self.body.decode("utf-8", "replace")

    @property
    def order_name(self) -> str | None:
        """The order's name (``#1001``), if the body has one (``order``, or ``return.order``)."""
        try:
            body = orjson.loads(self.body)
            inside = body.get("return", {}).get("order")
            orders = (body.get("order"), inside)
        except (orjson.JSONDecodeError, AttributeError):
            return None
        for order in orders:
            name = order.get("name") if isinstance(order, dict) else None
            if isinstance(name, str) and name:
                return name
        return None


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a search, newest first."""

    events: list[StoredEvent]
    #: Pass it back for the next page; ``None``: this was the last.
    cursor: str | None
    #: Candidates read to fill it (the search stops at ``scan_limit``).
    scanned: int = 0
    partial: bool = False


def record(key: str, stored: dict[Any, Any], *, with_body: bool = False) -> StoredEvent | None:
    """The event an ``HGETALL`` of its hash answered; ``None`` if it is gone."""
    if not stored or (b"received_at" not in stored and "received_at" not in stored):
        return None
    fields = {text(name): value for name, value in stored.items()}
    common: dict[str, Any] = {
        "key": key,
        "type": text(fields.get("type", b"")),
        "return_id": text(fields.get("subject", b"")),
        "received_at": float(text(fields["received_at"])),
        "store": text(fields["store"]) if "store" in fields else None,
        "runs": runlog.runs(stored),
        "pending": int(text(fields.get("pending", b"0"))),
        "requeued_at": float(text(fields["requeued_at"])) if "requeued_at" in fields else None,
        "order": text(fields["order"]) if "order" in fields else None,
    }
    if with_body:
        body = unpack_body(fields["body"]) if "body" in fields else b""
        return EventDetail(**common, body=body)
    return StoredEvent(**common)


class EventLog:
    """Search the stored events and their runs."""

    def __init__(
        self, connection: Redis, keys: Keys, retention: int, *, scan_limit: int = 5000
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.retention = retention
        self.scan_limit = scan_limit

    def search(
        self, where: EventFilter | None = None, *, cursor: str | None = None, limit: int = 50
    ) -> EventPage:
        """One page of the events ``where`` selects, newest first."""
        where = where or EventFilter()
        if where.order is not None or where.return_id is not None:
            return self._by_returns(where, cursor, limit)
        index = self._index(where)
        return self._walk(index, where, cursor, limit)

    def get(self, key: str) -> EventDetail | None:
        """One event with its runs and body; ``None`` if it is not stored (any more)."""
        found = next(self._records([key], with_body=True), None)
        return found if isinstance(found, EventDetail) else None

    def timeline(self, return_id: str, limit: int = 200) -> list[EventDetail]:
        """A return's stored events in the order received (the first ``limit``)."""
        keys = self.return_keys([return_id])
        found = [e for e in self._records(keys, with_body=True) if isinstance(e, EventDetail)]
        found.sort(key=lambda e: (e.received_at, e.key))
        return found[:limit]

    def return_keys(self, subjects: Sequence[str]) -> builtins.list[str]:
        """The keys of the stored events of these returns (from the return index's buckets)."""
        return self._lex(self.keys.returns, subjects)

    def order_returns(self, order: str) -> set[str]:
        """The return ids of an order, by its id or name (``1001`` finds ``#1001`` too)."""
        order = order.strip()
        names = sorted({order, f"#{order.lstrip('#')}", order.lstrip("#")} - {"", "#"})
        return set(self._lex(self.keys.orders, names))

    def _lex(self, index: Any, prefixes: Sequence[str]) -> builtins.list[str]:
        """``rest`` of each member ``<prefix>\\0<rest>`` of every live bucket, for each prefix."""
        live = runlog.buckets(time.time(), self.retention)
        with self.connection.pipeline(transaction=False) as pipe:
            for prefix in prefixes:
                low, high = f"[{prefix}\0", f"[{prefix}\x01"
                for bucket in live:
                    pipe.zrangebylex(index(bucket), low, high)
            replies = pipe.execute()
        return [text(m).split("\0", 1)[1] for reply in replies for m in reply]

    def per_minute(self, minutes: int, now: float) -> tuple[list[int], list[int]]:
        """Events received and events with a failed run, per minute, oldest minute first.

        A failure counts once per event and outcome (retrying, dead, parked):
        the indexes keep an event's latest failure of each kind.
        """
        start = (int(now) // 60 - minutes + 1) * 60
        failing = [self.keys.by_outcome(o) for o in ("retrying", "dead", "parked")]
        with self.connection.pipeline(transaction=False) as pipe:
            for m in range(minutes):
                low, high = start + 60 * m, f"({start + 60 * (m + 1)}"
                pipe.zcount(self.keys.events, low, high)
                for key in failing:
                    pipe.zcount(key, low, high)
            counts = [int(c) for c in pipe.execute()]
        step = 1 + len(failing)
        received = counts[::step]
        failed = [sum(counts[n + 1 : n + step]) for n in range(0, len(counts), step)]
        return received, failed

    def _index(self, where: EventFilter) -> str:
        """The sorted index to walk: the outcome's, or the time index.

        Types have no index of their own (130 bytes an event): Redo sends a
        handful of types, so a page of one type is read off the time index
        in a few chunks, and a rare one ends a page at ``scan_limit`` with a
        cursor to go on.
        """
        k = self.keys
        if where.outcome in runlog.INDEXED:
            return k.by_outcome(where.outcome)
        return k.events

    def _walk(self, index: str, where: EventFilter, cursor: str | None, limit: int) -> EventPage:
        # Outcome indexes are scored by when the run ended, the others by
        # when the event arrived: the time filter is checked on the record.
        timed = not index.startswith(self.keys.by_outcome(""))
        high: Any = "+inf" if where.until is None or not timed else where.until
        low: Any = "-inf" if where.since is None else where.since
        after_key, cursor_score = None, None
        if cursor:
            cursor_score, after_key = split_cursor(cursor)
            high = cursor_score if high == "+inf" else min(cursor_score, float(high))
        found: list[StoredEvent] = []
        scanned, offset = 0, 0
        last = ""
        while scanned < self.scan_limit:
            chunk = self.connection.zrevrangebyscore(
                index, high, low, start=offset, num=CHUNK, withscores=True
            )
            if not chunk:
                return EventPage(found, None, scanned)
            offset += len(chunk)
            rows = cast(list[tuple[Any, Any]], chunk)
            pairs = [(text(member), float(value)) for member, value in rows]
            if after_key is not None:
                # Same score as the cursor's row: only the members after it.
                pairs = [(m, s) for m, s in pairs if not (s == cursor_score and m >= after_key)]
            scanned += len(chunk)
            for (key, when), stored in zip(pairs, self._read([m for m, _ in pairs]), strict=True):
                last = f"{when!r}:{key}"
                event = record(key, stored)
                if event is not None and _matches(event, where):
                    found.append(event)
                    if len(found) == limit:
                        return EventPage(found, last, scanned)
            if len(chunk) < CHUNK:
                return EventPage(found, None, scanned)
        return EventPage(found, last or None, scanned, partial=True)

    def _by_returns(self, where: EventFilter, cursor: str | None, limit: int) -> EventPage:
        """A search by return or order: every event of those returns, read and sorted here."""
        subjects = set() if where.return_id is None else {where.return_id}
        if where.order is not None:
            found_returns = sorted(self.order_returns(where.order))[:ORDER_RETURNS]
            subjects = set(found_returns) & subjects if subjects else set(found_returns)
        keys = self.return_keys(sorted(subjects))
        events = [e for e in self._records(keys) if _matches(e, where)]
        events.sort(key=lambda e: (e.received_at, e.key), reverse=True)
        if cursor:
            at, after = split_cursor(cursor)
            events = [e for e in events if (e.received_at, e.key) < (at, after)]
        page = events[:limit]
        more = len(events) > limit
        resume = f"{page[-1].received_at!r}:{page[-1].key}" if more else None
        return EventPage(page, resume, len(keys))

    def _records(self, keys: Sequence[str], *, with_body: bool = False) -> Iterator[StoredEvent]:
        """The stored events of ``keys`` (gone ones left out), a chunk per round trip."""
        for n in range(0, len(keys), CHUNK):
            part = keys[n : n + CHUNK]
            for key, stored in zip(part, self._read(part, with_body=with_body), strict=True):
                event = record(key, stored, with_body=with_body)
                if event is not None:
                    yield event

    def _read(
        self, keys: Sequence[str], *, with_body: bool = False
    ) -> builtins.list[dict[Any, Any]]:
        """Each event's hash; ``with_body``, with its body as the field ``body``."""
        with self.connection.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.keys.event(key))
                if with_body:
                    pipe.get(self.keys.body(key))
            replies = pipe.execute()
        if not with_body:
            return list(replies)
        read = []
        for fields, body in zip(replies[::2], replies[1::2], strict=True):
            if body is not None:  # (None: it expired a moment before its hash)
                fields[b"body"] = body
            read.append(fields)
        return read


def _matches(event: StoredEvent, where: EventFilter) -> bool:
    fits = (
        (where.return_id is None or event.return_id == where.return_id)
        and (where.event_name is None or event.name == where.event_name)
        and (where.since is None or event.received_at >= where.since)
        and (where.until is None or event.received_at <= where.until)
    )
    if not fits or where.outcome is None:
        return fits
    if where.outcome == "unhandled":
        return not event.runs
    return any(run.outcome == where.outcome for run in event.runs)
