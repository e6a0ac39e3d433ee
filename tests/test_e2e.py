"""End to end: a real uvicorn receiver, real worker processes, real Redis.

20 returns x 5 events, each return's events posted one after another (as Redo
does) and the returns concurrently; two handlers sleeping a few ms. Every
handler must see every return's events exactly once and in posting order,
and redeliveries must be acknowledged and never run again.
"""

from __future__ import annotations

import random
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
from redis import Redis

from redo_hooks.testing import sample_body, wait_for

from .conftest import SECRET
from .processes import CLI, env, start_server, start_workers, stop

pytestmark = pytest.mark.slow

APP = "tests.e2e_app:hooks"
RETURNS = [f"ret-{i:02d}" for i in range(20)]
EVENTS = 5
AUTH = {"Authorization": f"Bearer {SECRET}"}


def bodies_for(subject: str) -> list[bytes]:
    return [
        sample_body("return.created" if n == 0 else "return.updated", return_id=subject, seq=n)
        for n in range(EVENTS)
    ]


def post_in_order(url: str, bodies: list[bytes]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        for body in bodies:
            statuses.append(client.post("/", content=body).status_code)
    return statuses


def recorded(redis: Redis, handler: str) -> dict[str, list[int]]:
    return {s: [int(x) for x in redis.lrange(f"e2e:{handler}:{s}", 0, -1)] for s in RETURNS}


def settled(redis: Redis) -> bool:
    """Nothing queued, scheduled or running, and no lane holds an event."""
    return (
        redis.llen("rq:queue:redo-hooks") == 0
        and redis.zcard("rq:wip:redo-hooks") == 0
        and redis.zcard("rq:scheduled:redo-hooks") == 0
        and not any(redis.scan_iter("rh:lane:*", count=1000))
    )


@pytest.fixture
def server(redis_url: str) -> Iterator[str]:
    process, url = start_server(APP, env(redis_url, SECRET))
    yield url
    # uvicorn shuts down gracefully, then re-raises SIGTERM to exit with it.
    assert stop(process) in (0, -signal.SIGTERM)


def test_every_handler_sees_every_event_once_in_order_with_two_workers(
    server: str, redis_url: str, redis: Redis
) -> None:
    workers = start_workers(APP, env(redis_url, SECRET), "--concurrency", "2")
    try:
        all_bodies = {s: bodies_for(s) for s in RETURNS}
        with ThreadPoolExecutor(max_workers=len(RETURNS)) as pool:
            results = list(pool.map(lambda s: post_in_order(server, all_bodies[s]), RETURNS))
        assert all(status == 202 for statuses in results for status in statuses)

        expected = {s: list(range(EVENTS)) for s in RETURNS}
        wait_for(lambda: recorded(redis, "second") == expected, 60, "every event to be handled")
        wait_for(lambda: recorded(redis, "first") == expected, 60, "every event to be handled")

        rng = random.Random(7)
        redeliveries = [rng.choice(all_bodies[rng.choice(RETURNS)]) for _ in range(10)]
        with httpx.Client(base_url=server, headers=AUTH) as client:
            for body in redeliveries:
                response = client.post("/", content=body)
                assert response.status_code == 200
                assert response.headers["Redo-Hooks-Duplicate"] == "true"
        wait_for(lambda: settled(redis), 30, "the queue to settle")
        assert recorded(redis, "first") == expected
        assert recorded(redis, "second") == expected
    finally:
        assert stop(workers) == 0


def test_burst_workers_under_concurrent_ingest_leave_nothing_behind(
    server: str, redis_url: str, redis: Redis
) -> None:
    environ = env(redis_url, SECRET)
    all_bodies = {s: bodies_for(s) for s in RETURNS}
    with ThreadPoolExecutor(max_workers=len(RETURNS)) as pool:
        posting = [pool.submit(post_in_order, server, all_bodies[s]) for s in RETURNS]
        # Several burst workers drain while events are still arriving.
        bursts = [start_workers(APP, environ, "--burst") for _ in range(3)]
        assert all(status == 202 for future in posting for status in future.result())
    for burst in bursts:
        assert burst.wait(timeout=60) == 0
    final = start_workers(APP, environ, "--burst", "--concurrency", "2")
    assert final.wait(timeout=60) == 0
    assert settled(redis)
    expected = {s: list(range(EVENTS)) for s in RETURNS}
    assert recorded(redis, "first") == expected
    assert recorded(redis, "second") == expected


def test_serve_refuses_to_start_without_a_secret(redis_url: str) -> None:
    environ = env(redis_url, SECRET)
    del environ["REDO_HOOKS_SECRETS"]
    result = subprocess.run(
        [*CLI, "serve", APP, "--port", "1"],
        env=environ,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert b"REDO_HOOKS_SECRETS" in result.stderr
