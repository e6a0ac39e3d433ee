"""Backpressure: 503 with Retry-After before Redis fills up, and nothing half-written."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.ops.replay import Selection, replay
from redo_hooks.store.keys import Keys
from redo_hooks.store.memory import Memory, check_policy
from redo_hooks.store.replies import text
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
        bodies = [sample_body(return_id=f"r{n}") for n in range(4)]
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


def test_near_maxmemory_a_redelivery_is_still_answered_as_a_duplicate(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Redo's retry of an event already stored is not refused: it costs nothing."""
    hooks = make_hooks()
    hooks.on("return", name="h")(lambda event: None)
    body = sample_body(return_id="ret-stored")
    with TestClient(hooks.asgi()) as client:
        assert client.post("/", content=body, headers=AUTH).status_code == 202
        used = int(redis.info("memory")["used_memory"])
        redis.config_set("maxmemory", int(used / 0.95))  # past the 90% mark
        try:
            wait_for(lambda: not redis.exists(Keys().memory), 5, "the memory reading to expire")
            before = snapshot(redis)
            again = client.post("/", content=body, headers=AUTH)
            refused = client.post("/", content=sample_body(return_id="ret-new"), headers=AUTH)
        finally:
            redis.config_set("maxmemory", 0)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert refused.status_code == 503
    assert snapshot(redis) == before


def test_only_events_kept_for_replay_yield_to_memory_pressure_oldest_first(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Waiting and dead-lettered events keep their bodies; handled ones go, oldest first."""
    hooks = make_hooks(retries=0)

    @hooks.on("return", name="h")
    def handle(event: ReturnEvent) -> None:
        if event.raw.get("fail"):
            raise RuntimeError("dead-letter me")

    filler = base64.b64encode(os.urandom(15_000)).decode()  # compresses little
    with TestClient(hooks.asgi()) as client:
        bodies: dict[str, bytes] = {}

        def post(**fields: Any) -> str:
            body = sample_body(**fields)
            answer = client.post("/", content=body, headers=AUTH)
            assert answer.status_code == 202, answer.text
            bodies[answer.json()["event"]] = body
            return str(answer.json()["event"])

        handled = [post(return_id=f"old-{n}", note=filler) for n in range(20)]
        dead = post(return_id="dead", fail=True, note=filler)
        drain(hooks, raise_on_dead=False)
        waiting = post(return_id="waiting", note=filler)
        used = int(redis.info("memory")["used_memory"])
        # Already past the 90% mark by 3%: Redis shrinks an idle client's query
        # buffer on its own schedule (tens of KB here), and the room that frees
        # must not be enough for the new event to fit without yielding.
        redis.config_set("maxmemory", int(used / 0.93))

        def memory_reading_expired() -> bool:
            return not redis.exists(Keys().memory)

        # The ingest script's last reading of INFO (kept 0.1 s) knew no maxmemory.
        wait_for(memory_reading_expired, 5, "the memory reading to expire")
        try:
            post(return_id="new", note=filler * 3)
        finally:
            redis.config_set("maxmemory", 0)
        # The reading that knew the limit must not make the next request yield too.
        wait_for(memory_reading_expired, 5, "the memory reading to expire")
        # A yielded event is still inside its dedupe window: it left a mark.
        again = client.post("/", content=bodies[handled[0]], headers=AUTH)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        metrics = client.get("/metrics").text
    gone = [key for key in handled if not redis.exists(f"rh:ev:{key}")]
    assert gone, "nothing yielded"
    assert gone == handled[: len(gone)]  # oldest first
    assert not {f"rh:ev:{key}".encode() for key in gone} & set(redis.keys("rh:ev:*"))
    assert not {f"rh:body:{key}".encode() for key in gone} & set(redis.keys("rh:body:*"))
    assert all(0 < redis.ttl(f"rh:seen:{key}") <= 86_400 for key in gone)
    assert not set(gone) & {text(k) for k in redis.zrange("rh:events", 0, -1)}
    assert redis.exists(f"rh:ev:{dead}") and redis.exists(f"rh:ev:{waiting}")
    assert f"redo_hooks_retention_yielded_total {float(len(gone))}" in metrics


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
