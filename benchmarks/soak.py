"""Soak: steady ingest while workers are SIGKILLed and restarted at random.

    .venv/bin/python -m benchmarks.soak [--duration 60] [--rate 50] [--workers 3] [--posters 4]

A receiver (``redo-hooks serve``) takes events at a steady offered rate from
``--posters`` threads — each return's events one after another, as Redo
sends them (a return belongs to one poster) — while
``--workers`` worker processes run two recording handlers. Every few seconds
one worker is killed with SIGKILL (often mid-handler) and a new one started.
After the posting stops, the workers get up to ``--drain`` seconds to finish.
Bounded in time; traffic goes to 127.0.0.1 only. Reports: events
acknowledged, processed per handler, lost (acknowledged, never processed),
duplicates (ran more than once: allowed, at-least-once), order violations
(an event ran after a later one of its return had run), dead letters, the
acknowledgement latency (p50/p99, as the client saw it) and Redis' memory at
the end.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import threading
import time

import httpx2 as httpx
from redis import Redis

from redo_hooks.testing import RedisServer, sample_body

from .common import (
    SECRET,
    child_env,
    drain,
    outcome,
    python,
    start,
    start_posters,
    stop,
    table,
)

APP = "benchmarks.soak_app:hooks"


def worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [python(), "-m", "redo_hooks.cli", "--log-level", "ERROR", "worker", APP],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def check(redis: Redis, handler: str, sent: dict[str, list[int]]) -> dict[str, int]:
    ran = {
        subject: [int(x) for x in redis.lrange(f"soak:{handler}:{subject}", 0, -1)]
        for subject in sent
    }
    return outcome(sent, ran)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of posting")
    parser.add_argument("--rate", type=float, default=50, help="events per second offered")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--returns", type=int, default=40)
    parser.add_argument("--kill-every", type=float, default=4.0, help="mean seconds")
    parser.add_argument("--drain", type=float, default=120, help="seconds allowed at the end")
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--posters", type=int, default=4, help="client threads")
    args = parser.parse_args()

    with RedisServer(appendonly=True) as server:
        redis = Redis.from_url(server.url)
        env = child_env(
            REDO_HOOKS_REDIS_URL=server.url, REDO_HOOKS_SECRETS=SECRET, REDO_HOOKS_BACKOFF="0.2"
        )
        url = f"http://127.0.0.1:{args.port}"
        receiver = start(
            [
                python(),
                "-m",
                "redo_hooks.cli",
                "--log-level",
                "ERROR",
                "serve",
                APP,
                "--port",
                str(args.port),
            ],
            env,
            url + "/healthz",
        )
        workers = [worker(env) for _ in range(args.workers)]
        sent: dict[str, list[int]] = {f"ret-{r}": [] for r in range(args.returns)}
        latencies: list[float] = []
        acked = refused = kills = 0
        started = time.monotonic()
        stop_at = started + args.duration
        lock = threading.Lock()
        seq = 0

        def post(client: httpx.Client, subject: str) -> None:
            nonlocal acked, refused, seq
            with lock:
                n = seq
                seq += 1
            kind = "return.created" if not sent[subject] else "return.updated"
            body = sample_body(kind, return_id=subject, seq=n)
            began = time.perf_counter()
            try:
                status = client.post("/", content=body).status_code
            except httpx.TransportError:
                status = 0
            took = time.perf_counter() - began
            with lock:
                if status == 202:
                    acked += 1
                    sent[subject].append(n)
                    latencies.append(took)
                else:
                    refused += 1

        posters = start_posters(
            url, list(sent), posters=args.posters, rate=args.rate, until=stop_at, post=post
        )
        while time.monotonic() < stop_at:
            time.sleep(random.uniform(0.5, 1.5) * args.kill_every)
            victim = random.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            workers[victim] = worker(env)
            kills += 1
        for poster in posters:
            poster.join()
        posted_for = time.monotonic() - started

        drained_in = drain(
            lambda: all(check(redis, h, sent)["lost"] == 0 for h in ("first", "second")),
            args.drain,
        )
        for process in workers:
            stop(process)
        stop(receiver)
        results = {h: check(redis, h, sent) for h in ("first", "second")}
        dead = redis.zcard("rh:dead:ids")
        memory = redis.info("memory")
        redis.close()

    print()
    print(
        f"soak: {args.duration:.0f} s at {args.rate:.0f} events/s offered, {args.workers} "
        f"workers, {kills} SIGKILLs, {args.returns} returns; drained {drained_in:.0f} s "
        "after posting stopped"
    )
    rows = [
        [h, acked, r["processed"], r["lost"], r["duplicates"], r["violations"], dead]
        for h, r in results.items()
    ]
    print(
        table(
            [
                "handler",
                "acknowledged",
                "processed",
                "lost",
                "duplicates",
                "order violations",
                "dead letters",
            ],
            rows,
        )
    )
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0.0
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
    print(
        f"acknowledged {acked} in {posted_for:.0f} s = {acked / posted_for:,.0f} events/s; "
        f"acknowledgement latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; Redis memory at the end "
        f"{int(memory['used_memory']) / 2**20:.1f} MiB (peak "
        f"{int(memory['used_memory_peak']) / 2**20:.1f} MiB)"
    )
    if refused:
        print(f"{refused} requests were not acknowledged (Redo would retry them)")


if __name__ == "__main__":
    main()
