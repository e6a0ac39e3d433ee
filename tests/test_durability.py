"""An acknowledged event survives a Redis restart (AOF on) and is then processed
by a real worker process."""

from __future__ import annotations

import time

import pytest
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import RedoHooks
from redo_hooks.store.keys import Keys
from redo_hooks.testing import RedisServer, deliver, sample_body

from . import e2e_app
from .conftest import SECRET, MakeHooks
from .processes import env, start_workers


def test_events_acknowledged_before_a_redis_restart_are_all_processed() -> None:
    with RedisServer(appendonly=True) as server:
        hooks = RedoHooks(redis_url=server.url, secrets=[SECRET])
        hooks.add(e2e_app.first, "return", name="e2e.first")  # as the worker's app routes
        hooks.add(e2e_app.second, "return.created", "return.updated", name="e2e.second")
        acknowledged = 0
        with TestClient(hooks.asgi()) as client:
            for n in range(30):
                body = sample_body(return_id=f"ret-{n % 3}", seq=n)
                response = client.post(
                    "/", content=body, headers={"Authorization": f"Bearer {SECRET}"}
                )
                acknowledged += response.status_code == 202
        assert acknowledged == 30
        server.stop()  # a clean shutdown flushes the AOF
        server.start()
        worker = start_workers("tests.e2e_app:hooks", env(server.url, SECRET), "--burst")
        assert worker.wait(timeout=60) == 0
        with Redis.from_url(server.url) as redis:
            seen = {
                f"ret-{r}": [int(x) for x in redis.lrange(f"e2e:first:ret-{r}", 0, -1)]
                for r in range(3)
            }
    assert seen == {f"ret-{r}": [n for n in range(30) if n % 3 == r] for r in range(3)}


def test_a_receiver_with_a_clock_8_days_fast_does_not_trim_the_replay_index(
    make_hooks: MakeHooks, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times are Redis' own: the retention trims by its clock, not a receiver's."""
    hooks = make_hooks()
    hooks.on("return", name="h")(lambda event: None)
    for n in range(5):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    fast = time.time() + 8 * 86_400
    with monkeypatch.context() as clock:
        clock.setattr(time, "time", lambda: fast)  # this process's clock, 8 days fast
        assert deliver(hooks, sample_body(return_id="ret-fast"))
    assert redis.zcard(Keys().events) == 6  # nothing trimmed
    seconds, _ = redis.time()
    newest = redis.zrange(Keys().events, -1, -1, withscores=True)
    received = float(newest[0][1])
    assert abs(received - int(seconds)) < 60  # stamped by Redis, not 8 days ahead
