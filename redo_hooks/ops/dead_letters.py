"""The dead-letter registry: list, show, retry and drop what handlers gave up on.

A dead letter is kept in ``<p>:dead`` (id -> JSON record) and ``<p>:dead:ids``
(by time), and holds its event's body in Redis until it is retried or dropped.
*Retry* routes the event again to the one handler that gave up on it, through
the same atomic ingest step, so it joins the end of that handler's lane for the
return and obeys the same ordering rules; the dead letter is removed in the
same MULTI/EXEC. *Drop* forgets it, and lets the body expire after
``retention``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis import Redis
from redis.exceptions import WatchError
from rq import Queue

from ..dispatch.handlers import Registry
from ..errors import RedoHooksError, deprecated
from ..settings import Settings
from ..store import lua
from ..store.events import Incoming, load_stored
from ..store.ingest import IngestPlan, Routed
from ..store.keys import Keys
from ..store.replies import as_bytes, text
from ..store.rq_internals import lane_job
from .paging import split_cursor


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered event and why."""

    id: str
    handler: str
    return_id: str
    event_key: str
    reason: str
    attempts: int
    first_error: str
    error: str
    traceback: str
    dead_at: float
    #: The lane is held on this event (its handler parks instead of moving on).
    parked: bool = False
    #: The issue it belongs to: its handler and masked error (``Admin.issues``).
    fingerprint: str = ""

    @classmethod
    def from_json(cls, raw: bytes) -> DeadLetter:
        """Parse a stored record."""
        data = orjson.loads(raw)
        data["parked"] = bool(data.get("parked", False))
        data["return_id"] = data.get("subject", "")  # the stored record's name for it
        return cls(**{name: data.get(name, "") for name in cls.__slots__})

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict (for ``--json``)."""
        return {name: getattr(self, name) for name in self.__slots__}

    @property
    def subject(self) -> str:
        """Deprecated: :attr:`return_id`."""
        deprecated("DeadLetter.subject", "DeadLetter.return_id")
        return self.return_id


#: Dead letters read per round trip.
PAGE = 500


class DeadLetters:
    """Operations on the dead-letter registry of one app."""

    def __init__(self, connection: Redis, settings: Settings, registry: Registry) -> None:
        self.connection = connection
        self.settings = settings
        self.registry = registry
        self.keys = Keys(settings.key_prefix)
        self.queue = Queue(settings.queue, connection=connection)
        self.plan = IngestPlan(settings, self.keys)
        self._scripts = {
            name: connection.register_script(lua.source(name))
            for name in ("dead_drop", "dead_forget", "ingest", "lane_unpark")
        }

    def list(
        self,
        *,
        handler: str | None = None,
        return_id: str | None = None,
        before: float | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """Dead letters, oldest first: only one handler's, one return's, or dead before a time.

        ``limit``: at most that many. Read a page of ``PAGE`` letters per round
        trip, so a registry of 100,000 letters is never read whole at once.
        """
        found: list[DeadLetter] = []
        for letter in self.iter(before=before):
            if (handler is None or letter.handler == handler) and (
                return_id is None or letter.return_id == return_id
            ):
                found.append(letter)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def iter(self, *, before: float | None = None) -> Iterator[DeadLetter]:
        """Every dead letter, oldest first (dead at or before ``before``), a page at a time."""
        return (letter for letter, _ in self.walk(before=before))

    def walk(
        self,
        *,
        newest_first: bool = False,
        before: float | None = None,
        cursor: str | None = None,
    ) -> Iterator[tuple[DeadLetter, str]]:
        """Every dead letter in time order, a page of ``PAGE`` per round trip, each with
        its position: a cursor that resumes the walk just after it.

        ``before``: only letters dead at or before that time. ``cursor``: a
        position this walk (in the same direction) gave.
        """
        # The index's score is a moment after the record's dead_at (letters
        # written before they shared one clock reading): a second of margin,
        # then the record decides.
        top: Any = "+inf" if before is None else before + 1
        bottom: Any = "-inf"
        at, after = None, ""
        if cursor:
            at, after = split_cursor(cursor)
            if newest_first:
                top = at if top == "+inf" else min(at, top)
            else:
                bottom = at
        offset = 0
        while True:
            if newest_first:
                rows = self.connection.zrevrangebyscore(
                    self.keys.dead_ids, top, bottom, start=offset, num=PAGE, withscores=True
                )
            else:
                rows = self.connection.zrangebyscore(
                    self.keys.dead_ids, bottom, top, start=offset, num=PAGE, withscores=True
                )
            if not rows:
                return
            offset += len(rows)
            pairs = [(text(m), float(s)) for m, s in cast(builtins.list[tuple[Any, Any]], rows)]
            if at is not None:
                # Letters with the cursor's score: only those after it, in this order.
                pairs = [
                    (m, s)
                    for m, s in pairs
                    if s != at or (m < after if newest_first else m > after)
                ]
            records = self.connection.hmget(self.keys.dead, [m for m, _ in pairs]) if pairs else []
            for (dead_id, score), raw in zip(pairs, records, strict=True):
                if raw is not None:
                    letter = DeadLetter.from_json(as_bytes(raw))
                    if before is None or letter.dead_at <= before:
                        yield letter, f"{score!r}:{dead_id}"
            if len(rows) < PAGE:
                return

    def get(self, dead_id: str) -> DeadLetter | None:
        """One dead letter by id."""
        raw = self.connection.hget(self.keys.dead, dead_id)
        return None if raw is None else DeadLetter.from_json(as_bytes(raw))

    def get_many(self, ids: builtins.list[str]) -> Iterator[DeadLetter]:
        """The letters of ``ids`` still there, in that order, ``PAGE`` per round trip."""
        for start in range(0, len(ids), PAGE):
            records = self.connection.hmget(self.keys.dead, ids[start : start + PAGE])
            for raw in records:
                if raw is not None:
                    yield DeadLetter.from_json(as_bytes(raw))

    def waiting_behind(self, letters: Iterable[DeadLetter]) -> dict[str, int]:
        """Per parked letter among ``letters`` (its id): the events its lane holds behind it."""
        parked = [d for d in letters if d.parked]
        if not parked:
            return {}
        with self.connection.pipeline(transaction=False) as pipe:
            for letter in parked:
                pipe.llen(self.keys.lane(letter.handler, letter.return_id))
            lengths = pipe.execute()
        return {d.id: max(0, int(n) - 1) for d, n in zip(parked, lengths, strict=True)}

    def event(self, letter: DeadLetter) -> Incoming | None:
        """The event ``letter`` holds (its body as received); ``None`` once it expired."""
        return load_stored(self.connection, self.keys, letter.event_key)

    def parked(self, limit: int) -> builtins.list[DeadLetter]:
        """The oldest ``limit`` dead letters whose lane is held (parked), from the parked index."""
        ids = self.connection.zrange(self.keys.parked, 0, limit - 1)
        if not ids:
            return []
        records = self.connection.hmget(self.keys.dead, [as_bytes(i) for i in ids])
        return [DeadLetter.from_json(as_bytes(r)) for r in records if r is not None]

    def drop(self, letter: DeadLetter) -> bool:
        """Forget ``letter``; ``False`` if it was already gone.

        A parked lane skips its head event and moves on to the next.
        """
        if letter.parked:
            return self._unpark(letter, drop=True)
        k = self.keys
        done = self._scripts["dead_drop"](
            keys=[k.dead, k.dead_ids, k.event(letter.event_key), k.body(letter.event_key)],
            args=[letter.id, self.settings.retention, k.base],
        )
        return bool(done)

    def retry(self, letter: DeadLetter) -> bool:
        """Route ``letter``'s event to its handler again; ``False`` if already gone.

        Raises ``RedoHooksError`` if the handler is no longer registered or
        the event's body is gone.
        """
        handler = self.registry.get(letter.handler)
        if handler is None:
            raise RedoHooksError(
                f"handler {letter.handler!r} is not registered in this app: cannot retry "
                f"{letter.id} (drop it, or point the command at the app that has it)"
            )
        if letter.parked:
            # The event is still the head of its lane: run the lane again.
            return self._unpark(letter, drop=False)
        k = self.keys
        incoming = self.event(letter)
        if incoming is None:
            raise RedoHooksError(f"the event of {letter.id} is gone from Redis: cannot retry")
        keys, args = self.plan.build([Routed(incoming, [handler.name], force=True)])
        ingest = self._scripts["ingest"]
        with self.connection.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(k.dead)  # type: ignore[no-untyped-call]
                    if not pipe.hexists(k.dead, letter.id):
                        return False
                    pipe.multi()
                    ingest(keys=keys, args=args, client=pipe)
                    # The retry's lane entry now holds the event: release the
                    # dead letter's hold on it.
                    self._scripts["dead_forget"](
                        keys=[k.dead, k.dead_ids, k.event(letter.event_key)],
                        args=[letter.id, k.base],
                        client=pipe,
                    )
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    def _unpark(self, letter: DeadLetter, *, drop: bool) -> bool:
        k, settings = self.keys, self.settings
        job = lane_job(self.connection, self.queue.name, letter.handler)
        with self.connection.pipeline(transaction=True) as pipe:
            self.queue.enqueue_job(job, pipeline=pipe)
            self._scripts["lane_unpark"](
                keys=[
                    k.lane(letter.handler, letter.return_id),
                    k.lane_state(letter.handler, letter.return_id),
                    k.dead,
                    k.dead_ids,
                    k.event(letter.event_key),
                    k.job_lanes(job.id),
                    k.waiting,
                    k.waiting_events,
                    k.parked,
                    k.body(letter.event_key),
                ],
                args=[
                    letter.id,
                    job.id,
                    letter.return_id,
                    "1" if drop else "0",
                    settings.retention,
                    k.event_prefix,
                    letter.handler,
                    k.base,
                ],
                client=pipe,
            )
            return bool(pipe.execute()[-1])
