"""Apps for the scheduling tests: retried events, and a rate-limited handler."""

from __future__ import annotations

import redis

from redo_hooks import HandlerContext, RedoHooks, ReturnEvent

#: Each event fails its first attempt, then succeeds (a scheduled retry between).
retried = RedoHooks()
#: At most five starts a second, cluster-wide: most lanes wait as scheduled jobs.
rated = RedoHooks()

_clients: dict[str, redis.Redis] = {}


def _client(hooks: RedoHooks) -> redis.Redis:
    url = hooks.settings.redis_url
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


@retried.on("return", name="sched.retried", retries=3, backoff=0.5)
def fail_once(event: ReturnEvent, ctx: HandlerContext) -> None:
    """Fails attempt 1 of every event; records the success of attempt 2."""
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    _client(retried).rpush("sched:ok", f"{event.return_id}:{event.raw['seq']}")


@rated.on("return", name="sched.rated", rate_limit="10/s")
def record_start(event: ReturnEvent) -> None:
    """Records when it started (Redis' clock) and which event, in order per return."""
    client = _client(rated)
    seconds, micros = client.time()
    with client.pipeline(transaction=False) as pipe:
        pipe.rpush("sched:starts", seconds + micros / 1e6)
        pipe.rpush(f"sched:order:{event.return_id}", int(event.raw["seq"]))
        pipe.execute()
