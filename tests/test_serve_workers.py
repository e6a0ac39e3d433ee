"""``redo-hooks serve --workers N``: several receiver processes on one port."""

from __future__ import annotations

import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from redis import Redis

from redo_hooks.testing import sample_body, wait_for

from .conftest import SECRET
from .processes import env, start_server, stop
from .test_e2e import APP

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {SECRET}"}


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def serving(pid: int) -> list[int]:
    """The receiver processes: uvicorn's spawned children (not its resource tracker)."""
    return [c for c in children(pid) if b"spawn_main" in cmdline(c)]


def cmdline(pid: int) -> bytes:
    """A process's command line; empty once it is gone (a killed child may vanish
    between listing the children and reading this)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def test_two_processes_share_the_port_store_every_event_and_replace_a_dead_one(
    redis_url: str, redis: Redis
) -> None:
    process, url = start_server(
        APP, env(redis_url, SECRET), None, "--workers", "2", "--header-timeout", "1"
    )
    try:
        wait_for(lambda: len(serving(process.pid)) == 2, 20, "two receiver processes")
        bodies = [sample_body(return_id=f"ret-{n % 7}", seq=n) for n in range(60)]

        def post(body: bytes) -> int:
            with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
                return client.post("/", content=body).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            assert list(pool.map(post, bodies)) == [202] * len(bodies)
        assert redis.zcard("rh:events") == len(bodies)
        # The header deadline (1 s, not the default 10 s) reaches the spawned
        # processes: the connection is closed well before the socket's 6 s.
        sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=6)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(1024) == b"", "the connection is closed after the header deadline"
        sock.close()

        victim = serving(process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(serving(process.pid)) == 2 and victim not in serving(process.pid),
            30,
            "uvicorn to replace the killed process",
        )
        assert post(sample_body(return_id="ret-after", seq=1000)) == 202
    finally:
        code = stop(process)
    assert code in (0, -signal.SIGTERM)
    assert redis.zcard("rh:events") == len(bodies) + 1
