"""Backpressure: 503 with Retry-After before Redis fills up, and nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from redo_hooks import RedoHooks
from redo_hooks.ops.replay import Selection, replay
from redo_hooks.store.memory import Memory, check_policy
from redo_hooks.testing import drain, sample_body, wait_for

from .conftest import SECRET, MakeHooks, snapshot

AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def hooks(make_hooks: MakeHooks) -> RedoHooks:
    hooks = make_hooks(max_waiting_events=3)
    hooks.on("return", name="h")(lambda event: None)
    return hooks


def test_over_the_backlog_ceiling_the_receiver_answers_503_and_writes_nothing(
    hooks: RedoHooks, redis: Redis
) -> None:
    with TestClient(hooks.asgi()) as client:
        bodies = [sample_body(subject=f"r{n}") for n in range(4)]
        for body in bodies[:3]:
            assert client.post("/", content=body, headers=AUTH).status_code == 202
        before = snapshot(redis)
        refused = client.post("/", content=bodies[3], headers=AUTH)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["type"].endswith("backlog-full")
        assert snapshot(redis) == before
        # An operator's replay is not refused: it is how a backlog gets fixed.
        assert sum(replay(redis, hooks.settings, hooks.registry, Selection()).values()) == 3
        drain(hooks)
        assert client.post("/", content=bodies[3], headers=AUTH).status_code == 202
        metrics = client.get("/metrics").text
    assert 'redo_hooks_requests_total{outcome="deferred",reason="backlog_full"} 1.0' in metrics


@pytest.fixture
def tight_memory(redis: Redis) -> Iterator[Redis]:
    """Redis' maxmemory set just above what it uses: past a 90% high-water mark."""
    used = int(redis.info("memory")["used_memory"])
    redis.config_set("maxmemory", int(used / 0.95))
    yield redis
    redis.config_set("maxmemory", 0)


def test_near_maxmemory_the_receiver_answers_503_until_memory_is_back(
    make_hooks: MakeHooks, tight_memory: Redis
) -> None:
    hooks = make_hooks()
    hooks.on("return", name="h")(lambda event: None)
    with TestClient(hooks.asgi()) as client:
        before = snapshot(tight_memory)
        refused = client.post("/", content=sample_body(), headers=AUTH)
        assert refused.status_code == 503
        assert refused.json()["type"].endswith("redis-memory-high")
        assert "of maxmemory" in refused.json()["detail"]
        assert snapshot(tight_memory) == before
        # A wrong secret is still a 401: pressure does not hide refusals.
        assert client.post("/", content=sample_body(), headers={}).status_code == 401
        tight_memory.config_set("maxmemory", 0)
        body = sample_body()
        wait_for(
            lambda: client.post("/", content=body, headers=AUTH).status_code == 202,
            10,
            "the receiver to accept again once memory is back",
        )


def test_an_evicting_redis_is_warned_about_at_start(make_hooks: MakeHooks, redis: Redis) -> None:
    redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with capture_logs() as logs, TestClient(make_hooks().asgi()):
            pass
    finally:
        redis.config_set("maxmemory-policy", "noeviction")
    warnings = [e for e in logs if e["event"] == "redis_may_evict_events"]
    assert warnings and warnings[0]["maxmemory_policy"] == "allkeys-lru"


def test_memory_readings() -> None:
    memory = Memory.from_info(
        {"used_memory": 90, "maxmemory": 100, "maxmemory_policy": "noeviction"}
    )
    assert memory.fraction == 0.9
    assert check_policy(memory, "test")
    assert Memory.from_info({"used_memory": 5, "maxmemory": 0}).fraction is None
    with capture_logs() as logs:
        assert not check_policy(Memory(1, 0, "volatile-lru"), "worker")
    assert logs[0]["process"] == "worker"
