"""An app for the kill property test: one steady and one flaky recording handler."""

from __future__ import annotations

import time

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


def _client() -> redis.Redis:
    return redis.Redis.from_url(hooks.settings.redis_url)


@hooks.on("return", name="kill.steady")
def steady(event: ReturnEvent) -> None:
    """Records each run."""
    time.sleep(0.01)
    _client().rpush(f"kill:steady:{event.return_id}", int(event.raw["seq"]))


@hooks.on("return", name="kill.flaky")
def flaky(event: ReturnEvent) -> None:
    """Fails as many times as ``kill:plan:<seq>`` says, then records the success."""
    client = _client()
    seq = int(event.raw["seq"])
    client.rpush(f"kill:attempts:{event.return_id}", seq)
    seconds, micros = client.time()
    client.rpush(f"kill:attempted_at:{event.return_id}:{seq}", seconds + micros / 1e6)
    time.sleep(0.01)
    if client.decr(f"kill:plan:{seq}") >= 0:
        raise RuntimeError(f"planned failure of event {seq}")
    client.rpush(f"kill:flaky:{event.return_id}", seq)
    client.rpush("kill:order", f"{event.return_id}:{seq}")
