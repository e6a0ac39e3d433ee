"""Slow and oversized requests against a real `redo-hooks serve`: cut off, nothing kept."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from redis import Redis

from redo_hooks.testing import sample_body

from .conftest import SECRET, snapshot
from .processes import CLI, ROOT, env, free_port, stop
from .test_e2e import APP

pytestmark = pytest.mark.slow

TIMEOUT = 1.0  # both the header and the body deadline of the server under test
# Generous: the server must act within TIMEOUT; this only bounds a broken test.
PATIENCE = 15.0


@pytest.fixture
def server(redis_url: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "--log-level", "WARNING", "serve", APP, "--port", str(port),
         "--header-timeout", str(TIMEOUT)],
        env=env(redis_url, SECRET, REDO_HOOKS_BODY_TIMEOUT=str(TIMEOUT)),
        cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                break
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.05)
    yield url, port
    stop(process)


OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(PATIENCE)
    OPEN.append(sock)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def headers(length: int, secret: str = SECRET) -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_headers_that_never_finish_are_cut_off(server: tuple[str, int], redis: Redis) -> None:
    _, port = server
    sock = connect(port)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nAuthoriz")
    started = time.monotonic()
    assert read_until_closed(sock) == b""  # closed without an answer
    assert time.monotonic() - started < PATIENCE
    # A connection that sends nothing at all is closed as well.
    idle = connect(port)
    assert read_until_closed(idle) == b""
    assert snapshot(redis) == {}


def test_a_trickled_body_gets_408_and_nothing_is_stored(
    server: tuple[str, int], redis: Redis
) -> None:
    _, port = server
    body = sample_body()
    sock = connect(port)
    sock.sendall(headers(len(body)))
    answer = b""
    sock.setblocking(False)
    for byte in body:  # one byte every 50 ms, until the server answers
        try:
            sock.sendall(bytes([byte]))
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            break
        with contextlib.suppress(BlockingIOError):
            answer += sock.recv(65536)
        if answer:
            break
        time.sleep(0.05)
    sock.setblocking(True)
    sock.settimeout(PATIENCE)
    with contextlib.suppress(ConnectionResetError):
        answer += read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"body-too-slow" in answer
    assert snapshot(redis) == {}


def test_a_huge_content_length_is_refused_before_the_body_is_read(
    server: tuple[str, int], redis: Redis
) -> None:
    _, port = server
    sock = connect(port)
    sock.sendall(headers(10**12))
    answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert snapshot(redis) == {}


def test_slow_clients_do_not_keep_others_waiting(server: tuple[str, int], redis: Redis) -> None:
    url, port = server
    slow = [connect(port) for _ in range(50)]
    for sock in slow:
        sock.sendall(headers(100_000))  # and then never the body
    response = httpx.post(
        url + "/",
        content=sample_body(),
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=PATIENCE,
    )
    assert response.status_code == 202
    for sock in slow:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
