"""Replaying stored events to handlers, after fixing a bug: ``redo-hooks replay``.

Events are kept ``retention`` seconds after every handler is done with them,
and indexed by the time they were received (``<p>:events``). A replay selects
from that index — by time range, return, event type, and how each handler's
run ended — and routes each event again, oldest first, to the handlers that
want its type (or only the ones named), through the same atomic ingest step
with dedupe skipped. So replayed events join the end of each handler's lane
for their return and keep the ordering rules: a return's replayed events run
in the order they were first received, after anything already waiting for
that return.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import InitVar, dataclass
from datetime import datetime
from typing import Any

from redis import Redis

from ..dispatch.handlers import Registry
from ..errors import ConfigurationError, deprecated
from ..models import event_kind
from ..settings import Settings
from ..store import lua, runlog
from ..store.events import load_stored
from ..store.ingest import IngestPlan, Routed
from ..store.keys import Keys
from ..store.replies import text

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: str, now: float | None = None) -> float:
    """Epoch seconds from ISO 8601 (``2026-11-27T10:00:00Z``) or an age (``90m``, ``2d``)."""
    match = _RELATIVE.match(value.strip())
    if match:
        return (time.time() if now is None else now) - float(match[1]) * _UNITS[match[2]]
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"cannot read the time {value!r}: use ISO 8601 (2026-11-27T10:00:00Z) "
            "or an age such as 30m, 6h, 2d"
        ) from None
    if stamp.tzinfo is None:
        raise ConfigurationError(f"time {value!r} needs a timezone, e.g. a trailing Z for UTC")
    return stamp.timestamp()


#: What a replay can select runs by, and the stored outcomes each means.
REPLAY_OUTCOMES: dict[str, frozenset[str]] = {
    "failed": frozenset({"dead", "parked", "retrying"}),
    "ok": frozenset({"ok"}),
    "skipped": frozenset({"skipped"}),
}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which stored events to replay, and to which handlers."""

    since: float | None = None
    until: float | None = None
    return_id: str | None = None
    #: An event's name (``"return.updated"``), as handlers subscribe to it.
    event_name: str | None = None
    handlers: tuple[str, ...] = ()
    #: Only to handlers whose run of the event ended so: ``failed`` (dead,
    #: parked or retrying), ``ok`` or ``skipped`` (stale). None: whatever it was.
    outcome: str | None = None
    #: The 0.2 names of ``return_id`` and ``event_name``; deprecated.
    subject: InitVar[str | None] = None
    event_type: InitVar[str | None] = None

    def __post_init__(self, subject: str | None, event_type: str | None) -> None:
        if subject is not None:
            deprecated("Selection(subject=...)", "Selection(return_id=...)")
            object.__setattr__(self, "return_id", subject)
        if event_type is not None:
            deprecated("Selection(event_type=...)", "Selection(event_name=...)")
            object.__setattr__(self, "event_name", event_type)
        if self.event_name is not None:
            event_kind(self.event_name)  # ConfigurationError listing the valid names
        if self.outcome is not None and self.outcome not in REPLAY_OUTCOMES:
            raise ConfigurationError(
                f"no outcome {self.outcome!r} to replay by: use one of {', '.join(REPLAY_OUTCOMES)}"
            )
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ConfigurationError(
                "--since is later than --until: that selects nothing; swap them"
            )


def replay(
    connection: Redis,
    settings: Settings,
    registry: Registry,
    selection: Selection,
    *,
    dry_run: bool = False,
) -> Counter[str]:
    """Route the selected events again; return how many went to each handler."""
    for name in selection.handlers:
        if registry.get(name) is None:
            known = ", ".join(h.name for h in registry) or "none"
            raise ConfigurationError(f"no handler named {name!r} (registered: {known})")
    keys = Keys(settings.key_prefix)
    low = "-inf" if selection.since is None else selection.since
    high = "+inf" if selection.until is None else selection.until
    plan = IngestPlan(settings, keys)
    ingest = connection.register_script(lua.source("ingest"))
    queued: Counter[str] = Counter()
    batch: list[Routed] = []
    for raw_key in connection.zrangebyscore(keys.events, low, high):
        key = text(raw_key)
        incoming = load_stored(connection, keys, key)
        if incoming is None:
            continue  # expired between the index and now
        if selection.return_id is not None and incoming.subject != selection.return_id:
            continue
        if selection.event_name is not None and incoming.name != selection.event_name:
            continue
        targets = [
            h
            for h in registry.for_type(incoming.type)
            if not selection.handlers or h.name in selection.handlers
        ]
        if targets and selection.outcome is not None:
            wanted = REPLAY_OUTCOMES[selection.outcome]
            stored = connection.hmget(keys.event(key), [runlog.field(h.name) for h in targets])
            targets = [
                h
                for h, run in zip(targets, stored, strict=True)
                if run is not None and runlog.unpack(h.name, run).outcome in wanted
            ]
        if not targets:
            continue
        for handler in targets:
            queued[handler.name] += 1
        batch.append(Routed(incoming, [h.name for h in targets], force=True))
        if len(batch) >= settings.ingest_batch:
            _flush(ingest, plan, batch, dry_run)
            batch = []
    _flush(ingest, plan, batch, dry_run)
    return queued


def _flush(ingest: Any, plan: IngestPlan, batch: list[Routed], dry_run: bool) -> None:
    if batch and not dry_run:
        keys, args = plan.build(batch)
        ingest(keys=keys, args=args)
