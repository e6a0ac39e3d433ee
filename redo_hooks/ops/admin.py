"""The operator API: what the ``redo-hooks`` CLI and the dashboard both call.

::

    from redo_hooks.admin import Admin

    admin = Admin(hooks)                     # your app: reads and actions
    admin.status()
    page = admin.events(EventFilter(order="#1001"))
    admin.timeline(page.events[0].return_id)
    admin.retry_dead(where=DeadFilter(handler="sync_refund"))
    for issue in admin.issues():             # what is failing, grouped
        print(issue.count, issue.handler, issue.title)

    admin = Admin(settings)                  # the settings alone: reads only
                                             # (retry and replay route to handlers)

Every method is synchronous and makes a bounded number of round trips
(pages, not scans); see ``ops/events.py`` for how searches stay fast.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis import Redis

from ..dispatch.handlers import Registry
from ..errors import ConfigurationError
from ..settings import Settings
from ..store.connections import redis_client
from ..store.keys import Keys
from ..store.replies import text
from .dead_letters import DeadLetter, DeadLetters
from .events import EventDetail, EventFilter, EventLog, EventPage
from .issues import Issue, Issues
from .overview import HandlerSummary, WorkerProcess, handler_summaries, worker_processes
from .replay import Selection, replay
from .status import Status, snapshot

#: Open issues read to count each handler's dead letters and parked lanes.
ISSUES_SUMMED = 1000


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """Which dead letters a list or a bulk action selects; every field given must match."""

    handler: str | None = None
    return_id: str | None = None
    reason: str | None = None
    #: Only letters dead at or before this time (epoch s).
    before: float | None = None
    #: Only the letters of this issue (its fingerprint: ``Admin.issues``).
    issue: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` is selected."""
        return (
            (self.handler is None or letter.handler == self.handler)
            and (self.return_id is None or letter.return_id == self.return_id)
            and (self.reason is None or letter.reason == self.reason)
            and (self.before is None or letter.dead_at <= self.before)
            and (self.issue is None or letter.fingerprint == self.issue)
        )

    @property
    def empty(self) -> bool:
        """Selects every letter."""
        return all(
            v is None for v in (self.handler, self.return_id, self.reason, self.before, self.issue)
        )


@dataclass(frozen=True, slots=True)
class DeadPage:
    """One page of dead letters, newest first."""

    letters: list[DeadLetter]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Activity:
    """Events received and events with a failed run, per minute, oldest first."""

    start: float
    received: list[int]
    failed: list[int]


class App(Protocol):
    """What ``Admin`` reads of a ``RedoHooks`` app."""

    @property
    def settings(self) -> Settings: ...
    @property
    def registry(self) -> Registry: ...


class Admin:
    """Read and act on one app's pipeline in Redis: the one operator entry point.

    ``Admin(hooks)``: your ``RedoHooks`` app, for reads and actions.
    ``Admin(settings)``: reads only; retrying dead letters and replaying
    route events to the app's handlers, so they need the app (or
    ``registry=``). ``connection``: an open client (else one is made from
    ``redis_url``). Opens a Redis connection: ``close()`` it, or use a
    ``with`` block.
    """

    def __init__(
        self,
        app: App | Settings,
        *,
        registry: Registry | None = None,
        connection: Redis | None = None,
    ) -> None:
        if isinstance(app, Settings):
            settings = app
        else:
            settings, registry = app.settings, registry or app.registry
        self.settings = settings
        self.registry = registry
        self.connection = connection or redis_client(
            settings.redis_url, socket_timeout=settings.redis_timeout
        )
        self.keys = Keys(settings.key_prefix)
        self.log = EventLog(self.connection, self.keys, settings.retention)
        self._dead = DeadLetters(self.connection, settings, registry or Registry())
        self._issues = Issues(self.connection, self.keys, self._dead)

    def close(self) -> None:
        """Close the Redis connection."""
        self.connection.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------

    def status(self) -> Status:
        """Waiting, running, retrying, dead and parked: ``redo-hooks status``."""
        return snapshot(self.connection, self.settings, self.registry)

    def activity(self, minutes: int = 60) -> Activity:
        """Events and failures per minute over the last ``minutes``."""
        now = time.time()
        received, failed = self.log.per_minute(minutes, now)
        return Activity((int(now) // 60 - minutes + 1) * 60, received, failed)

    def events(
        self, where: EventFilter | None = None, *, cursor: str | None = None, limit: int = 50
    ) -> EventPage:
        """One page of stored events, newest first, each with its runs."""
        return self.log.search(where, cursor=cursor, limit=limit)

    def event(self, key: str) -> EventDetail | None:
        """One stored event with its runs and body."""
        return self.log.get(key)

    def timeline(self, return_id: str) -> list[EventDetail]:
        """A return's stored events in the order received, each with its runs and body."""
        return self.log.timeline(return_id)

    def dead_letters(
        self, where: DeadFilter | None = None, *, cursor: str | None = None, limit: int = 50
    ) -> DeadPage:
        """One page of dead letters, newest first."""
        where = where or DeadFilter()
        found: list[DeadLetter] = []
        for letter, position in self._dead.walk(newest_first=True, cursor=cursor):
            if where.matches(letter):
                found.append(letter)
                if len(found) == limit:
                    return DeadPage(found, position)
        return DeadPage(found, None)

    def dead_list(
        self, where: DeadFilter | None = None, limit: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters ``where`` selects, newest first (at most ``limit``): ``dead list``.

        The order of every list of dead letters: the dashboard's, ``dead_letters``.
        """
        where = where or DeadFilter()
        found: Iterator[DeadLetter]
        if where.issue is not None:
            found = iter(sorted(self._selected(where), key=lambda d: d.dead_at, reverse=True))
        else:
            walk = self._dead.walk(newest_first=True, before=where.before)
            found = (d for d, _ in walk if where.matches(d))
        return list(itertools.islice(found, limit))

    def dead_letter(self, dead_id: str) -> DeadLetter | None:
        """One dead letter, traceback included."""
        return self._dead.get(dead_id)

    def dead_event(self, letter: DeadLetter) -> EventDetail | None:
        """The event a dead letter holds, with its runs; ``None`` once it expired."""
        return self.log.get(letter.event_key)

    def parked(self, limit: int = 20) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters a lane is parked on."""
        return self._dead.parked(limit)

    def count_dead(self, where: DeadFilter) -> int:
        """How many dead letters ``where`` selects."""
        return sum(1 for _ in self._selected(where))

    def parked_on(self, return_id: str, handlers: Sequence[str]) -> dict[str, DeadLetter]:
        """Per handler of ``handlers`` whose lane for the return is parked: the letter it is
        parked on (the return's later events for that handler wait behind it)."""
        states = [self.keys.lane_state(h, return_id) for h in handlers]
        with self.connection.pipeline(transaction=False) as pipe:
            for state in states:
                pipe.hget(state, "parked")
            ids = pipe.execute()
        found = {}
        for handler, dead_id in zip(handlers, ids, strict=True):
            letter = None if dead_id is None else self._dead.get(text(dead_id))
            if letter is not None:
                found[handler] = letter
        return found

    def throttled(self, lanes: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these lanes (handler, return id) wait for a permit (``rate_limit``,
        ``max_concurrency``), not after a failure: two round trips."""
        with self.connection.pipeline(transaction=False) as pipe:
            for handler, return_id in lanes:
                pipe.hget(self.keys.lane_state(handler, return_id), "owner")
            owners = pipe.execute()
        held = [(lane, text(o)) for lane, o in zip(lanes, owners, strict=True) if o is not None]
        with self.connection.pipeline(transaction=False) as pipe:
            for _, owner in held:
                pipe.zscore(self.keys.throttled, owner)
            due = pipe.execute()
        return {lane for (lane, _), when in zip(held, due, strict=True) if when is not None}

    def behind_each(self, letters: Sequence[DeadLetter]) -> dict[str, int]:
        """Per parked letter among ``letters`` (its id): the events waiting behind it."""
        return self._dead.waiting_behind(letters)

    def waiting_behind(self, letter: DeadLetter) -> int:
        """Events of its return waiting behind ``letter``, if its lane is parked on it."""
        return self._dead.waiting_behind([letter]).get(letter.id, 0)

    def issues(self, *, handler: str | None = None, limit: int = 50) -> list[Issue]:
        """Open issues (dead letters grouped by handler and masked error), newest first.

        Read from counters kept as letters are written: no scan, whatever
        the size of the store. ``redo-hooks issues``; ``/issues``.
        """
        return self._issues.page(handler=handler, limit=limit)

    def handlers(self) -> list[HandlerSummary]:
        """Per handler: runs, retries, throttled waits, open dead and parked, p50/p95, last ok."""
        return handler_summaries(
            self.connection, self.keys, self.registry, self._issues.page(limit=ISSUES_SUMMED)
        )

    def workers(self) -> list[WorkerProcess]:
        """The worker processes serving the app's queues: slots, busy, last beat, versions."""
        queues = {self.settings.queue, self.settings.quarantine_queue}
        return worker_processes(self.connection, queues)

    def issue(self, fingerprint: str) -> Issue | None:
        """One open issue with its sample letter, some returns and what waits behind it."""
        return self._issues.get(fingerprint)

    # -- acting ----------------------------------------------------------

    def retry_dead(self, ids: Sequence[str] = (), *, where: DeadFilter | None = None) -> int:
        """Route dead letters' events to their handler again; how many.

        Either ``ids``, or every letter ``where`` selects. Needs the app.
        """
        self._need_registry()
        return self._act(ids, where, self._dead.retry)

    def drop_dead(self, ids: Sequence[str] = (), *, where: DeadFilter | None = None) -> int:
        """Forget dead letters (a parked lane moves on); how many."""
        return self._act(ids, where, self._dead.drop)

    def replay(self, selection: Selection, *, dry_run: bool = False) -> Counter[str]:
        """Route stored events to their handlers again (``dry_run``: only count); per handler."""
        return replay(
            self.connection, self.settings, self._need_registry(), selection, dry_run=dry_run
        )

    # -- helpers ---------------------------------------------------------

    def _need_registry(self) -> Registry:
        if self.registry is None:
            raise ConfigurationError(
                "this needs the app's handlers: use Admin(hooks), not Admin(settings)"
            )
        return self.registry

    def _act(self, ids: Sequence[str], where: DeadFilter | None, action: Any) -> int:
        if ids and where is not None:
            raise ConfigurationError("give dead-letter ids or a filter, not both")
        letters: Iterator[DeadLetter]
        if ids:
            letters = self._dead.get_many(list(ids))
        else:
            # Read every selected letter first: acting while paging would shift the pages.
            letters = iter(list(self._selected(where or DeadFilter())))
        return sum(1 for letter in letters if action(letter))

    def _selected(self, where: DeadFilter) -> Iterator[DeadLetter]:
        """The letters ``where`` selects; an issue's from its own index."""
        if where.issue is None:
            return (d for d in self._dead.iter() if where.matches(d))
        ids = self._issues.letter_ids(where.issue)
        return (d for d in self._dead.get_many(ids) if where.matches(d))
