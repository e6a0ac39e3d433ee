"""Shared fixtures: a private real Redis for the session, flushed around each test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.store.keys import Keys
from redo_hooks.store.replies import as_bytes
from redo_hooks.testing import RedisServer

from .processes import kill_leftovers

SECRET = "test-secret-0123456789"
SECOND_SECRET = "rotated-secret-9876543210"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REDO_HOOKS_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command run in-process (``--log-level ERROR``) configures logging for the
    whole process: put it back, so the next test sees every level again."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _no_leftover_workers() -> Iterator[None]:
    yield
    kill_leftovers()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = Redis.from_url(redis_server.url)
    # A worker an earlier test SIGKILLed may still have its blocking dequeue
    # open here until the kernel closes its socket; Redis would hand this
    # test's first job to it. Drop every other client first.
    client.client_kill_filter(_type="normal", skipme=True)
    # Server-wide settings a test may change (memory limits): a test that
    # failed before putting them back must not fail every test after it.
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


__all__ = ["as_bytes"]  # re-exported for the tests

MakeHooks = Callable[..., RedoHooks]


@pytest.fixture
def make_hooks(redis_url: str) -> MakeHooks:
    """A RedoHooks on the test Redis, with a secret and no retry backoff."""

    def make(**overrides: Any) -> RedoHooks:
        settings: dict[str, Any] = {
            "redis_url": redis_url,
            "secrets": [SECRET, SECOND_SECRET],
            "backoff": 0,
        }
        settings.update(overrides)
        return RedoHooks(**settings)

    return make


# The ingest script's reading of Redis' memory: a cache it keeps 0.1 s and lets
# expire, so a snapshot taken before a request may hold it and one taken after
# may not, with nothing written in between.
MEMORY_READING = Keys("rh").memory.encode()


def snapshot(client: Redis) -> dict[bytes, Any]:
    """Every key and its value, but the memory reading: to prove a request wrote nothing."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter():
        if key == MEMORY_READING:
            continue
        kind = client.type(key)
        if kind == b"string":
            out[key] = client.get(key)
        elif kind == b"hash":
            out[key] = client.hgetall(key)
        elif kind == b"list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == b"set":
            out[key] = client.smembers(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out
