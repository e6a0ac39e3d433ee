"""A TCP proxy that delays every chunk: Redis "one zone away" for the benchmarks.

    .venv/bin/python -m benchmarks.latency_proxy --listen 7001 --to 127.0.0.1:6379 --rtt 2.5

``tc netem`` is not available on these machines, so the round trip is added
here: each chunk read from one side is written to the other ``rtt / 2`` ms
after it arrived, in order, in both directions, on threads of a process of
its own (an event loop's timers, uvloop's or asyncio's epoll, round a delay
up to whole milliseconds). With ``--rtt 0`` it forwards at once: the baseline that pays
the same extra hop. :func:`measure_rtt` says what a round trip through it
really takes (a Redis ``PING``).
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

from redis import Redis

from redo_hooks.dev.redis_server import free_port
from redo_hooks.testing import wait_for

from .common import ROOT, python


def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
    """Forward ``source`` to ``sink``, each chunk ``delay`` s after it arrived, in order.

    Two threads per direction: one reads and stamps, one sleeps until each
    chunk is due and writes it. ``time.sleep`` keeps sub-millisecond delays;
    an event loop's timers round them up to whole milliseconds.
    """
    chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def deliver() -> None:
        while True:
            due, data = chunks.get()
            if not data:
                break
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                sink.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=deliver, daemon=True)
    sender.start()
    try:
        while data := source.recv(65536):
            chunks.put((time.perf_counter() + delay, data))
    except OSError:
        pass
    finally:
        chunks.put((time.perf_counter() + delay, b""))
        sender.join()


def serve(listen: int, host: str, port: int, rtt_ms: float) -> None:
    """Accept on ``listen``; proxy each connection to ``host:port`` with ``rtt_ms`` added."""
    delay = rtt_ms / 2000
    server = socket.create_server(("127.0.0.1", listen))

    def handle(client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((host, port))
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pipe, args=(upstream, client, delay), daemon=True)
        back.start()
        _pipe(client, upstream, delay)
        back.join()
        client.close()
        upstream.close()

    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


@contextlib.contextmanager
def proxied(redis_url: str, rtt_ms: float) -> Iterator[str]:
    """A proxy process in front of ``redis_url`` (``redis://host:port``); yields its URL."""
    target = redis_url.split("://", 1)[1].split("/", 1)[0]
    port = free_port()
    process = subprocess.Popen(
        [
            python(),
            "-m",
            "benchmarks.latency_proxy",
            "--listen",
            str(port),
            "--to",
            target,
            "--rtt",
            str(rtt_ms),
        ],
        cwd=ROOT,
    )
    url = f"redis://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 10, "the latency proxy")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        with Redis.from_url(url, socket_timeout=1) as client:
            return bool(client.ping())
    except OSError:
        return False
    except Exception:  # redis' ConnectionError is not an OSError
        return False


def measure_rtt(url: str, pings: int = 200) -> float:
    """The median ``PING`` round trip through ``url``, in ms."""
    with Redis.from_url(url) as client:
        client.ping()
        took = []
        for _ in range(pings):
            began = time.perf_counter()
            client.ping()
            took.append(time.perf_counter() - began)
    took.sort()
    return took[len(took) // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", required=True, help="host:port")
    parser.add_argument("--rtt", type=float, default=0.0, help="ms added to each round trip")
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.listen, host, int(port), args.rtt)


if __name__ == "__main__":
    main()
