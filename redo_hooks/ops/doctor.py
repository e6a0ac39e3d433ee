"""``redo-hooks doctor APP``: is this deployment able to receive and run events?

Each check is one line: ``ok``, ``warn`` (works, but risks losing or delaying
events) or ``fail`` (events are not received, stored or run). Checked:

* Redis answers; it refuses writes rather than evicting keys when full
  (``maxmemory-policy noeviction``); it keeps an append-only file (else an
  acknowledged event lives in memory only until the next snapshot);
* worker processes are registered, and each has the app's handlers (a
  worker deployed from another version would dead-letter or strand lanes);
* no lane waits for a handler the app lacks; events still arrive
  (``alert_no_events_after``);
* with the Redo API's secret: each store has a subscription pointing at the
  public URL, and the secret Redo sends is one the receiver accepts (that
  check talks to Redo: ``cli/doctor.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from ..dispatch.handlers import Registry
from ..settings import Settings
from ..store import worker_handlers
from ..store.keys import Keys
from .status import snapshot

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it stands, and what to do."""

    name: str
    level: Level
    detail: str


def check_redis(connection: Redis) -> list[Check]:
    """Redis answers, refuses writes when full, and keeps an append-only file."""
    try:
        info = connection.info()
    except (RedisError, OSError) as exc:
        return [Check("redis", "fail", f"does not answer: {type(exc).__name__}: {exc}")]
    found = [Check("redis", "ok", f"Redis {info.get('redis_version', '?')} answers")]
    policy = str(connection.config_get("maxmemory-policy").get("maxmemory-policy", "?"))
    found.append(
        Check("maxmemory-policy", "ok", "noeviction: a full Redis refuses, never drops")
        if policy == "noeviction"
        else Check(
            "maxmemory-policy",
            "fail",
            f"{policy}: a full Redis evicts stored events and lanes; "
            "set maxmemory-policy noeviction",
        )
    )
    aof = int(info.get("aof_enabled", 0))
    found.append(
        Check("append-only file", "ok", "on: an acknowledged event survives a restart")
        if aof
        else Check(
            "append-only file",
            "warn",
            "off: an acknowledged event lives in memory only until the next snapshot; "
            "set appendonly yes (deploy/redis.conf)",
        )
    )
    return found


def check_workers(connection: Redis, settings: Settings, registry: Registry) -> list[Check]:
    """Worker processes are registered and each has the app's handlers."""
    keys = Keys(settings.key_prefix)
    # A service runs one process on the quarantine queue alone: it counts too.
    queues = {settings.queue, settings.quarantine_queue}
    live = {
        f"{w.hostname}:{w.pid}"
        for w in Worker.all(connection=connection)
        if queues & set(w.queue_names())
    }
    if not live:
        return [Check("workers", "fail", "no worker process is registered: nothing runs events")]
    found = [Check("workers", "ok", f"{len(live)} worker process(es) registered")]
    wanted = sorted(h.name for h in registry)
    recorded = {p: h for p, h in worker_handlers.published(connection, keys).items() if p in live}
    for process, handlers in sorted(recorded.items()):
        missing, extra = sorted(set(wanted) - set(handlers)), sorted(set(handlers) - set(wanted))
        if missing or extra:
            found.append(
                Check(
                    f"handlers of {process}",
                    "fail",
                    f"differ from this app's: lacks {missing or '-'}, has more {extra or '-'} "
                    "(a worker from another version?)",
                )
            )
    unknown = len(live) - len(recorded)
    if unknown:
        found.append(
            Check("handlers", "warn", f"{unknown} process(es) did not say their handlers (0.2?)")
        )
    elif len(found) == 1:
        found.append(Check("handlers", "ok", f"every worker has this app's {len(wanted)}"))
    return found


def check_flow(connection: Redis, settings: Settings, registry: Registry) -> list[Check]:
    """No lane waits for a missing handler; events still arrive."""
    status = snapshot(connection, settings, registry)
    found = []
    if status.missing_handlers:
        found.append(
            Check(
                "missing handlers",
                "fail",
                "lanes wait for handlers this app lacks: "
                + ", ".join(f"{h} ({n})" for h, n in status.missing_handlers.items()),
            )
        )
    quiet_after = settings.alert_no_events_after
    if status.last_event_at is None:
        found.append(Check("events", "warn", "no event stored (none yet, or past retention)"))
    elif status.quiet:
        age = time.time() - status.last_event_at
        found.append(
            Check(
                "events",
                "fail",
                f"none stored for {age:.0f} s (over alert_no_events_after, {quiet_after} s)",
            )
        )
    else:
        age = time.time() - status.last_event_at
        found.append(Check("events", "ok", f"the last one was stored {age:.0f} s ago"))
    return found
