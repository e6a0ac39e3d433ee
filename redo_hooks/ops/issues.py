"""Issues: what is failing, grouped, for ``redo-hooks issues``, ``/issues`` and ``Admin``.

Read from the counters the dead-letter scripts keep (``store/issues.py``):
a page of issues costs one round trip for the index and one for the page's
summaries, whatever the size of the store.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from typing import Any, cast

from redis import Redis

from ..store.keys import Keys
from ..store.replies import text
from .dead_letters import DeadLetter, DeadLetters

#: Parked letters of an issue whose lanes are counted for "events waiting behind".
PARKED_LOOKED_AT = 100


@dataclass(frozen=True, slots=True)
class Issue:
    """One group of dead letters: the same handler failing with the same (masked) error."""

    #: Its id: the handler and masked error, hashed.
    fingerprint: str
    handler: str
    #: The error with ids, numbers and quoted values masked: "TimeoutError: after <n> s".
    title: str
    #: Open dead letters (not yet retried or dropped).
    count: int
    #: Returns with an open letter in it.
    returns: int
    #: Open letters whose lane is parked on them.
    parked: int
    #: Letters seen since the issue opened (retried and dropped ones included).
    seen: int
    first_seen: float
    last_seen: float
    #: The newest letter's id: its traceback is the issue's sample.
    sample_id: str
    #: The sample letter itself, when read (``Admin.issue``).
    sample: DeadLetter | None = None
    #: Events waiting behind its parked lanes, when read (``Admin.issue``): of
    #: at most ``PARKED_LOOKED_AT`` parked letters.
    waiting_behind: int = 0
    #: Some of the returns affected, when read (``Admin.issue``).
    some_returns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The issue as a dict (for ``--json``); the sample as its id."""
        out = {name: getattr(self, name) for name in self.__slots__ if name != "sample"}
        out["sample_error"] = self.sample.error if self.sample else None
        return out


class Issues:
    """The issues of one app, read from their counters."""

    def __init__(self, connection: Redis, keys: Keys, dead: DeadLetters) -> None:
        self.connection = connection
        self.keys = keys
        self.dead = dead

    def page(self, *, handler: str | None = None, limit: int = 50) -> builtins.list[Issue]:
        """Open issues, the most recently seen first (``handler``: only its)."""
        found: builtins.list[Issue] = []
        offset, step = 0, max(limit, 50)
        while len(found) < limit:
            ids = [
                text(i)
                for i in self.connection.zrevrange(self.keys.issues, offset, offset + step - 1)
            ]
            if not ids:
                break
            offset += len(ids)
            for issue in self._summaries(ids):
                if handler is None or issue.handler == handler:
                    found.append(issue)
            if handler is None:
                break  # a page holds every issue it read
        return found[:limit]

    def get(self, fingerprint: str, *, returns: int = 50) -> Issue | None:
        """One issue with its sample letter, some of its returns and what waits behind it."""
        summaries = self._summaries([fingerprint])
        if not summaries:
            return None
        issue = summaries[0]
        key = self.keys.issue(fingerprint)
        found = cast(dict[Any, Any], self.connection.hscan(f"{key}:returns", count=returns)[1])
        some = [text(r) for r in found][:returns]
        return replace(
            issue,
            sample=self.dead.get(issue.sample_id),
            some_returns=sorted(some),
            waiting_behind=self._waiting_behind(issue),
        )

    def letter_ids(self, fingerprint: str) -> builtins.list[str]:
        """The ids of an issue's open letters, oldest first."""
        ids = self.connection.zrange(f"{self.keys.issue(fingerprint)}:letters", 0, -1)
        return [text(i) for i in ids]

    def _summaries(self, fingerprints: builtins.list[str]) -> builtins.list[Issue]:
        with self.connection.pipeline(transaction=False) as pipe:
            for fp in fingerprints:
                pipe.hgetall(self.keys.issue(fp))
                pipe.hlen(f"{self.keys.issue(fp)}:returns")
            replies = pipe.execute()
        found = []
        for n, fp in enumerate(fingerprints):
            raw = cast(dict[Any, Any], replies[2 * n])
            if not raw:
                continue  # closed between the index read and this one
            fields = {text(k): text(v) for k, v in raw.items()}
            found.append(
                Issue(
                    fingerprint=fp,
                    handler=fields.get("handler", ""),
                    title=fields.get("title", ""),
                    count=int(fields.get("count", 0)),
                    returns=int(replies[2 * n + 1]),
                    parked=int(fields.get("parked", 0)),
                    seen=int(fields.get("seen", 0)),
                    first_seen=float(fields.get("first_seen", 0)),
                    last_seen=float(fields.get("last_seen", 0)),
                    sample_id=fields.get("sample", ""),
                )
            )
        return found

    def _waiting_behind(self, issue: Issue) -> int:
        if not issue.parked:
            return 0
        ids = self.connection.zrange(
            f"{self.keys.issue(issue.fingerprint)}:letters", 0, PARKED_LOOKED_AT - 1
        )
        letters = self.dead.get_many([text(i) for i in ids])
        return sum(self.dead.waiting_behind(letters).values())
