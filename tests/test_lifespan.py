"""The worker lifespan: resources made once per worker process, closed when it stops."""

from __future__ import annotations

import signal

import pytest
from redis import Redis

from redo_hooks import ConfigurationError, RedoHooks
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from . import lifespan_app
from .conftest import SECRET, MakeHooks, as_bytes
from .processes import env, start_workers


def pids(redis: Redis, key: str) -> list[int]:
    return [int(x) for x in redis.lrange(key, 0, -1)]


def test_each_worker_process_opens_it_once_and_closes_it_on_sigterm(
    redis_url: str, redis: Redis
) -> None:
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    hooks.add(lifespan_app.uses_state, "return", name="lifespan.uses_state")
    for n in range(20):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    workers = start_workers(
        "tests.lifespan_app:hooks", env(redis_url, SECRET), "--concurrency", "2"
    )
    wait_for(lambda: redis.llen("lifespan:used") == 20, 30, "every event to be handled")
    # Under load the first process may drain all 20 before the second is up.
    # Two worker processes and the quarantine process each open it.
    wait_for(lambda: len(pids(redis, "lifespan:opened")) == 3, 30, "all three to open it")
    opened = pids(redis, "lifespan:opened")
    assert len(opened) == 3 and len(set(opened)) == 3  # once per process
    assert redis.llen("lifespan:closed") == 0  # still open while the workers run
    workers.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=30) == 0
    assert sorted(pids(redis, "lifespan:closed")) == sorted(opened)
    used = {int(as_bytes(e).split(b":")[0]) for e in redis.lrange("lifespan:used", 0, -1)}
    assert used <= set(opened)  # handlers got their own process's state


def test_drain_runs_the_handlers_inside_the_lifespan(
    make_hooks: MakeHooks, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = make_hooks()
    monkeypatch.setattr(lifespan_app, "hooks", hooks)  # its settings: this test's Redis
    hooks.on_worker(lifespan_app.resources)
    hooks.add(lifespan_app.uses_state, "return", name="lifespan.uses_state")
    assert deliver(hooks, sample_body(return_id="ret-1"))
    drain(hooks)
    assert len(pids(redis, "lifespan:opened")) == 1
    assert pids(redis, "lifespan:closed") == pids(redis, "lifespan:opened")
    assert redis.llen("lifespan:used") == 1


def test_one_lifespan_per_app(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    hooks.on_worker(lifespan_app.resources)
    with pytest.raises(ConfigurationError, match="already registered"):
        hooks.on_worker(lifespan_app.resources)
