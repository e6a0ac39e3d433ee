"""Dispatch benchmark: ``redo-hooks worker --burst`` against stock RQ, same run.

    .venv/bin/python -m benchmarks.dispatch [--events 5000] [--returns 500 5000] [--rounds 3]
    .venv/bin/python -m benchmarks.dispatch --io [--rounds 3]
    .venv/bin/python -m benchmarks.dispatch --rtt 2.5 [--rounds 3]
    .venv/bin/python -m benchmarks.dispatch --sizing [--rounds 1]

``--io``: I/O-bound handlers against the no-op one, same run, one
``redo-hooks worker --burst`` process with default settings, 4,000 returns x 2
events: an async handler awaiting 50 ms and a sync handler sleeping 50 ms; the
ratio is events/s over the no-op's. Then the resident memory of one worker
process with 256 events in flight (an async handler that holds each event).

``--sizing``: 400 events (one per return) of an async handler awaiting 6 s,
drained by one ``redo-hooks worker --burst`` process with default settings,
against ``docs/operations.md``'s sizing: events x handler seconds /
``async_concurrency`` (400 x 6 / 100 = 24 s).

``--rtt MS``: the worker reaches Redis through a TCP proxy that adds ``MS``
to each round trip (``benchmarks/latency_proxy.py``: production Redis is a
network hop away, not loopback), against the same proxy adding nothing, same
run: the no-op and the async 50 ms handler, 1,000 returns x 2 events, one
``redo-hooks worker --burst`` process; the ratio is events/s at ``MS`` over
events/s at 0.

For each shape (N events over M returns) and round:

* ours  — N events are posted through a running receiver (each return's
          events in order, returns concurrently; one no-op handler), then one
          ``redo-hooks worker --burst`` process drains them;
* stock — the same N bodies are enqueued as plain RQ jobs chained per return
          with ``depends_on`` (each job depends on the previous event of its
          return), then one ``rq worker --burst -w rq.SimpleWorker`` drains them.

Last, ``ingest.lua`` alone: the same bodies stored by calling the script
from this process, one Redis client and nothing else running, with 1 and 16
events per call; Redis CPU per event from ``INFO commandstats`` (under the
receiver's load the EVALSHA times above also count the time Redis waits for
a core on this 2-core machine).

Both jobs parse and validate the event with the project's models and do
nothing else, so the comparison is the framework's overhead. Times are wall
times of the worker process minus the same command's start-up on an empty
queue (measured in the same round). Memory is Redis ``used_memory`` per
waiting event after loading, and per retained event after the drain (the
processed events kept for replay), each also as a multiple of the body's
bytes; ingest.lua's Redis CPU per event is ``INFO commandstats``' EVALSHA time
over the events loaded (the receiver batches concurrent requests: the table
says how many events one call carried). Ordering is on in both; the table's last
column is ours / stock in events/s (target >= 2x per worker process).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
from redis import Redis
from rq import Queue
from rq.job import Dependency

from redo_hooks import RedoHooks
from redo_hooks.receiver.body import parse_body
from redo_hooks.store import lua
from redo_hooks.store.ingest import IngestPlan, Routed
from redo_hooks.store.keys import Keys
from redo_hooks.testing import RedisServer, deliver, sample_body, wait_for

from .common import ROOT, SECRET, child_env, median, python, start, stop, table
from .latency_proxy import measure_rtt, proxied

APP = "benchmarks.bench_app:hooks"


def bodies(events: int, returns: int) -> dict[str, list[bytes]]:
    per: dict[str, list[bytes]] = {f"ret-{r}": [] for r in range(returns)}
    for n in range(events):
        subject = f"ret-{n % returns}"
        kind = "return.created" if len(per[subject]) == 0 else "return.updated"
        per[subject].append(sample_body(kind, return_id=subject, seq=n))
    return per


def ingest_alone(redis: Redis, url: str, per: dict[str, list[bytes]], size: int) -> list[float]:
    """``ingest.lua``'s EVALSHA µs per event and per call, ``size`` events a call, uncontended."""
    hooks = RedoHooks(redis_url=url, secrets=[SECRET])
    hooks.add(lambda event: None, "return", name="bench.noop")
    plan = IngestPlan(hooks.settings, Keys(hooks.settings.key_prefix))
    routed = [
        Routed(parse_body(body, max_depth=32), ["bench.noop"])
        for bodies in zip(*per.values(), strict=False)
        for body in bodies
    ]
    calls = [plan.build(routed[n : n + size]) for n in range(0, len(routed), size)]
    redis.flushall()
    script = redis.register_script(lua.source("ingest"))
    redis.config_resetstat()
    for keys, args in calls:
        script(keys=keys, args=args)
    stats = redis.info("commandstats")["cmdstat_evalsha"]
    return [stats["usec"] / len(routed), stats["usec"] / stats["calls"]]


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def load_through_receiver(url: str, per: dict[str, list[bytes]]) -> None:
    def post_all(items: list[bytes]) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET}"}) as client:
            for body in items:
                response = client.post("/", content=body)
                if response.status_code != 202:
                    raise SystemExit(f"receiver answered {response.status_code}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(post_all, per.values()))


def load_stock(redis: Redis, per: dict[str, list[bytes]]) -> None:
    queue = Queue("stock", connection=redis)
    last: dict[str, str] = {}
    longest = max(len(v) for v in per.values())
    for n in range(longest):  # interleaved across returns, as events arrive
        for subject, items in per.items():
            if n < len(items):
                depends = Dependency(jobs=[last[subject]]) if subject in last else None
                job = queue.enqueue("benchmarks.bench_app.noop_job", items[n], depends_on=depends)
                last[subject] = job.id


IO_APPS = [
    ("no-op", "benchmarks.bench_app:hooks", "bench.noop"),
    ("async, awaits 50 ms", "benchmarks.bench_app:io_async", "bench.io"),
    ("sync, sleeps 50 ms", "benchmarks.bench_app:io_sync", "bench.io"),
]


def worker_cmd(app: str, *extra: str) -> list[str]:
    return [python(), "-m", "redo_hooks.cli", "--log-level", "WARNING", "worker", app, *extra]


def deliver_all(
    server_url: str, handler: str, per: dict[str, list[bytes]], **settings: Any
) -> None:
    hooks = RedoHooks(redis_url=server_url, secrets=[SECRET], **settings)
    hooks.on("return", name=handler)(lambda event: None)
    for events in per.values():
        for body in events:
            assert deliver(hooks, body)


def burst_drain(
    app: str, handler: str, per: dict[str, list[bytes]], server_url: str, env: dict[str, str]
) -> float:
    """Seconds one ``worker --burst`` process takes to drain ``per``, its start-up subtracted.

    ``env`` says where the worker's Redis is (directly, or through a proxy);
    the events are delivered straight to ``server_url``.
    """
    redis = Redis.from_url(server_url)
    try:
        redis.flushall()
        startup = timed(worker_cmd(app, "--burst"), env)
        deliver_all(server_url, handler, per)
        wall = timed(worker_cmd(app, "--burst"), env)
        if any(redis.scan_iter("rh:lane:*")):
            raise SystemExit(f"{app}: events left behind")
    finally:
        redis.close()
    return wall - startup


#: Events of each I/O-bound shape (over half as many returns).
IO_EVENTS = 8000


def io_bound(server_url: str, redis: Redis, rounds: int) -> None:
    """The I/O-bound shapes against the no-op one (see the module docstring)."""
    per = bodies(IO_EVENTS, IO_EVENTS // 2)
    env = child_env(REDO_HOOKS_REDIS_URL=server_url)
    rates: dict[str, list[float]] = {name: [] for name, _, _ in IO_APPS}
    for round_no in range(rounds):
        for name, app, handler in IO_APPS:
            seconds = burst_drain(app, handler, per, server_url, env)
            if seconds < 0.5:
                raise SystemExit(f"{name}: drained in {seconds:.2f} s, within start-up noise")
            rates[name].append(IO_EVENTS / seconds)
        print(
            f"io round {round_no + 1}: "
            + ", ".join(f"{n} {r[-1]:,.0f}/s" for n, r in rates.items())
        )
    noop = median(rates["no-op"])
    rows = [
        [name, median(r), " / ".join(f"{x:,.0f}" for x in r), f"{median(r) / noop:.2f}x"]
        for name, r in rates.items()
    ]
    print()
    print(
        f"dispatch, I/O-bound: {IO_EVENTS} events / {IO_EVENTS // 2} returns, "
        f"one worker process, {rounds} rounds"
    )
    print(table(["handler", "events/s", "per round", "vs no-op"], rows))
    print()
    print(in_flight_memory(server_url, redis))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS")


def worker_rss_kib(parent: int) -> tuple[int, int]:
    """(the largest worker process's RSS, its parent's).

    ``redo-hooks worker`` is a parent, a worker process and a quarantine
    process; the events run in the worker process, the larger.
    """
    kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return max(rss_kib(int(child)) for child in kids), rss_kib(parent)


def in_flight_memory(server_url: str, redis: Redis, count: int = 256) -> str:
    """Resident memory of one worker process: idle, and with ``count`` events in flight."""
    app = "benchmarks.bench_app:held"
    env = child_env(
        REDO_HOOKS_REDIS_URL=server_url,
        REDO_HOOKS_LANES_PER_JOB=str(count),
        REDO_HOOKS_ASYNC_CONCURRENCY=str(count),
    )
    redis.flushall()
    idle_worker = subprocess.Popen(worker_cmd(app), env=env, cwd=ROOT)
    try:
        wait_for(lambda: any(redis.scan_iter("rq:worker:*")), 30, "the worker to start")
        idle, parent = worker_rss_kib(idle_worker.pid)
    finally:
        stop(idle_worker)
    redis.flushall()
    # The job's lanes are gathered at ingest: one job with all of them.
    deliver_all(server_url, "bench.held", bodies(count, count), lanes_per_job=count)
    worker = subprocess.Popen(worker_cmd(app), env=env, cwd=ROOT)
    try:
        wait_for(lambda: int(redis.get("bench:in_flight") or 0) >= count, 60, f"{count} in flight")
        busy, _ = worker_rss_kib(worker.pid)
        wait_for(lambda: not any(redis.scan_iter("rh:lane:*")), 60, "the events to finish")
    finally:
        stop(worker)
    return (
        f"worker process RSS: idle {idle / 1024:.1f} MiB, with {count} events in flight "
        f"{busy / 1024:.1f} MiB (+{(busy - idle) / count:.1f} KiB per event in flight); "
        f"its parent process {parent / 1024:.1f} MiB"
    )


#: The shapes measured through the latency proxy (name, app, handler).
RTT_APPS = IO_APPS[:2]
#: Events of each shape through the proxy (over half as many returns).
RTT_EVENTS = 2000


def through_proxy(server_url: str, rounds: int, rtt_ms: float) -> None:
    """The no-op and async I/O shapes with Redis ``rtt_ms`` away, against 0 (see the docstring)."""
    per = bodies(RTT_EVENTS, RTT_EVENTS // 2)
    rates: dict[tuple[str, float], list[float]] = {}
    measured: dict[float, float] = {}
    for round_no in range(rounds):
        for added in (0.0, rtt_ms):
            with proxied(server_url, added) as url:
                measured[added] = measure_rtt(url)
                env = child_env(REDO_HOOKS_REDIS_URL=url)
                for name, app, handler in RTT_APPS:
                    seconds = burst_drain(app, handler, per, server_url, env)
                    rates.setdefault((name, added), []).append(RTT_EVENTS / max(seconds, 1e-9))
            print(
                f"rtt round {round_no + 1}, +{added:g} ms: "
                + ", ".join(f"{n} {rates[(n, added)][-1]:,.0f}/s" for n, _, _ in RTT_APPS),
                flush=True,
            )
    rows = []
    for name, _, _ in RTT_APPS:
        base = median(rates[(name, 0.0)])
        for added in (0.0, rtt_ms):
            r = rates[(name, added)]
            rows.append(
                [
                    name,
                    f"+{added:g}",
                    f"{measured[added]:.2f}",
                    median(r),
                    " / ".join(f"{x:,.0f}" for x in r),
                    f"{median(r) / base:.2f}x",
                ]
            )
    print()
    print(
        f"dispatch through a latency proxy: {RTT_EVENTS} events / {RTT_EVENTS // 2} returns, "
        f"one worker process, {rounds} rounds"
    )
    print(table(["handler", "added ms", "PING ms", "events/s", "per round", "vs +0 ms"], rows))


SIZING_EVENTS = 400
SIZING_SECONDS = 6.0


def sizing(server_url: str, rounds: int) -> None:
    """The sizing row: a slow async handler's drain time against the formula."""
    env = child_env(REDO_HOOKS_REDIS_URL=server_url)
    expected = SIZING_EVENTS * SIZING_SECONDS / 100  # async_concurrency's default
    walls = []
    per = bodies(SIZING_EVENTS, SIZING_EVENTS)
    for _ in range(rounds):
        wall = burst_drain("benchmarks.bench_app:io_slow", "bench.slow", per, server_url, env)
        walls.append(wall)
        print(f"sizing round: {wall:.1f} s", flush=True)
    rows = [
        [
            f"{SIZING_EVENTS} events, async 6 s",
            f"{median(walls):.1f}",
            " / ".join(f"{w:.1f}" for w in walls),
            f"{expected:.0f}",
            f"{median(walls) / expected:.2f}x",
        ]
    ]
    print()
    print("dispatch, sizing: one worker process, default settings")
    print(table(["shape", "drain s", "per round", "formula s", "vs formula"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--returns", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8798)
    parser.add_argument("--io", action="store_true", help="the I/O-bound shapes instead")
    parser.add_argument(
        "--rtt", type=float, help="ms added to Redis round trips (latency proxy) instead"
    )
    parser.add_argument("--sizing", action="store_true", help="the sizing row instead")
    args = parser.parse_args()
    if args.sizing:
        with RedisServer() as server:
            sizing(server.url, args.rounds)
        return
    if args.rtt is not None:
        with RedisServer() as server:
            through_proxy(server.url, args.rounds, args.rtt)
        return
    if args.io:
        with RedisServer() as server:
            redis = Redis.from_url(server.url)
            io_bound(server.url, redis, args.rounds)
            redis.close()
        return

    rows: list[list[object]] = []
    footprint: list[list[object]] = []
    alone: list[list[object]] = []
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        env = child_env(REDO_HOOKS_REDIS_URL=server.url, REDO_HOOKS_SECRETS=SECRET)
        ours_cmd = [
            python(),
            "-m",
            "redo_hooks.cli",
            "--log-level",
            "WARNING",
            "worker",
            APP,
            "--burst",
        ]
        stock_cmd = [
            python(),
            "-m",
            "rq.cli",
            "worker",
            "--burst",
            "-q",
            "-w",
            "rq.SimpleWorker",
            "--url",
            server.url,
            "stock",
        ]
        for returns in args.returns:
            per = bodies(args.events, returns)
            body_bytes = sum(len(b) for v in per.values() for b in v) / args.events
            ours_rates, stock_rates, ours_mem, stock_mem = [], [], [], []
            retained_mem: list[float] = []
            ingest_us: list[float] = []
            per_call: list[float] = []
            for round_no in range(args.rounds):
                # ours
                redis.flushall()
                startup = timed(ours_cmd, env)
                receiver = start(
                    [
                        python(),
                        "-m",
                        "redo_hooks.cli",
                        "--log-level",
                        "WARNING",
                        "serve",
                        APP,
                        "--port",
                        str(args.port),
                    ],
                    env,
                    f"http://127.0.0.1:{args.port}/healthz",
                )
                try:
                    before = redis.info("memory")["used_memory"]
                    redis.config_resetstat()
                    load_through_receiver(f"http://127.0.0.1:{args.port}", per)
                    ours_mem.append((redis.info("memory")["used_memory"] - before) / args.events)
                    calls = redis.info("commandstats")["cmdstat_evalsha"]
                    ingest_us.append(calls["usec"] / args.events)
                    per_call.append(args.events / calls["calls"])
                finally:
                    stop(receiver)
                wall = timed(ours_cmd, env)
                # Processed, kept for replay: bodies, dedupe marks, the index.
                retained_mem.append((redis.info("memory")["used_memory"] - before) / args.events)
                left = sum(redis.llen(k) for k in redis.scan_iter("rh:lane:*"))
                if left or redis.llen("rq:queue:redo-hooks"):
                    raise SystemExit(f"ours left {left} events behind")
                ours_rates.append(args.events / max(wall - startup, 1e-9))
                # stock
                redis.flushall()
                startup = timed(stock_cmd, env)
                before = redis.info("memory")["used_memory"]
                load_stock(redis, per)
                stock_mem.append((redis.info("memory")["used_memory"] - before) / args.events)
                wall = timed(stock_cmd, env)
                if redis.llen("rq:queue:stock") or redis.zcard("rq:deferred:stock"):
                    raise SystemExit("stock RQ left jobs behind")
                stock_rates.append(args.events / max(wall - startup, 1e-9))
                print(
                    f"{returns} returns, round {round_no + 1}: ours {ours_rates[-1]:,.0f}/s, "
                    f"stock {stock_rates[-1]:,.0f}/s",
                    flush=True,
                )
            for size in (1, 16):
                alone_event, alone_call = zip(
                    *(ingest_alone(redis, server.url, per, size) for _ in range(args.rounds)),
                    strict=True,
                )
                shape = f"{args.events} events / {returns} returns"
                alone.append([shape, size, median(list(alone_event)), median(list(alone_call))])
            ours, stock = median(ours_rates), median(stock_rates)
            footprint.append(
                [
                    f"{args.events} events / {returns} returns",
                    body_bytes,
                    median(ours_mem),
                    f"{median(ours_mem) / body_bytes:.2f}x",
                    median(retained_mem),
                    f"{median(retained_mem) / body_bytes:.2f}x",
                    median(ingest_us),
                    median(per_call),
                ]
            )
            shape = f"{args.events} events / {returns} returns"
            rows.append(
                [
                    shape,
                    "redo-hooks worker --burst",
                    ours,
                    " / ".join(f"{r:,.0f}" for r in ours_rates),
                    median(ours_mem),
                    f"{ours / stock:.2f}x",
                ]
            )
            rows.append(
                [
                    shape,
                    "rq SimpleWorker, depends_on chains",
                    stock,
                    " / ".join(f"{r:,.0f}" for r in stock_rates),
                    median(stock_mem),
                    "1.00x",
                ]
            )
        redis.close()
    print()
    print(
        f"dispatch: {args.rounds} rounds, one worker process each, no-op handler "
        "(parse + validate only)"
    )
    print(
        table(
            ["shape", "worker", "events/s", "per round", "Redis bytes/waiting event", "vs stock"],
            rows,
        )
    )
    print()
    print(
        "Redis footprint of ours (used_memory per event, ÷ the body's bytes) and "
        "ingest.lua's Redis CPU (INFO commandstats, EVALSHA µs per event)"
    )
    print(
        table(
            [
                "shape",
                "body bytes",
                "waiting bytes",
                "÷ body",
                "retained bytes",
                "÷ body",
                "ingest.lua µs/event",
                "events/call",
            ],
            footprint,
        )
    )
    print()
    print("ingest.lua alone: called from this process, nothing else running (median of rounds)")
    print(table(["shape", "events/call", "µs/event", "µs/call"], alone))


if __name__ == "__main__":
    main()
