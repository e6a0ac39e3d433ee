"""An app for the limits tests: a capped slow handler, a fast one, a rate-limited one."""

from __future__ import annotations

import os
import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()
_client: redis.Redis | None = None

# Counts the runs under way and keeps the most seen at once.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(hooks.settings.redis_url)
    return _client


@hooks.on("return", name="limits.slow", max_concurrency=2)
def slow(event: ReturnEvent) -> None:
    """At most two at once, cluster-wide; each takes LIMITS_SLOW_SECONDS (default 0.3)."""
    c = client()
    c.eval(_ENTER, 2, "limits:slow:now", "limits:slow:most")
    c.rpush("limits:slow:pids", os.getpid())
    seconds, micros = c.time()  # Redis' clock, the one permit leases are kept in
    c.rpush("limits:slow:started", f"{seconds + micros / 1e6!r}")
    time.sleep(float(os.environ.get("LIMITS_SLOW_SECONDS", "0.3")))
    c.decr("limits:slow:now")
    c.rpush("limits:slow:done", event.return_id)


@hooks.on("return", name="limits.fast")
def fast(event: ReturnEvent) -> None:
    """No limit, no wait."""
    client().rpush("limits:fast:done", event.return_id)
