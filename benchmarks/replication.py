"""What acknowledging only replicated events costs: ``min_replicas_ack`` 0 against 1.

    .venv/bin/python -m benchmarks.replication [--duration 10] [--rounds 3]

A primary with one replica (both private ``redis-server``s on loopback, AOF
off), and ``redo-hooks serve`` on the primary measured with wrk twice per
round, interleaved: acknowledging once the primary stored the event
(``min_replicas_ack=0``, the default), and once a replica confirmed it too
(``min_replicas_ack=1``: one ``WAIT`` per group-committed batch). The ratio
column is against the default.
"""

from __future__ import annotations

import argparse
import tempfile

from redis import Redis

from redo_hooks.testing import RedisServer

from .common import (
    SECRET,
    child_env,
    median,
    need,
    parse_wrk,
    python,
    run_wrk,
    start,
    stop,
    table,
)
from .ingest import fresh_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8798)
    args = parser.parse_args()
    wrk = need("wrk", "apt-get install wrk")
    results: dict[int, list[dict[str, float]]] = {0: [], 1: []}
    with (
        RedisServer() as primary,
        RedisServer(replica_of=primary),  # returns once in sync
        tempfile.TemporaryDirectory() as tmp,
    ):
        redis = Redis.from_url(primary.url)
        url = f"http://127.0.0.1:{args.port}"
        argv = [python(), "-m", "redo_hooks.cli", "--log-format", "json", "serve",
                "benchmarks.bench_app:hooks", "--port", str(args.port)]  # fmt: skip
        try:
            for round_no in range(args.rounds):
                for acks in (0, 1):
                    redis.flushall()
                    # Warm-up and measurement send different events (no duplicates).
                    warm = fresh_script(tmp, f"{acks}-{round_no}-warm", 1000)
                    script = fresh_script(tmp, f"{acks}-{round_no}", 1000)
                    env = child_env(
                        REDO_HOOKS_REDIS_URL=primary.url,
                        REDO_HOOKS_SECRETS=SECRET,
                        REDO_HOOKS_MIN_REPLICAS_ACK=str(acks),
                    )
                    process = start(argv, env, url + "/healthz")
                    try:
                        run_wrk(wrk, warm, url, args.connections, 2)
                        out = run_wrk(wrk, script, url, args.connections, args.duration)
                    finally:
                        stop(process)
                    measured = parse_wrk(out)
                    results[acks].append(measured)
                    print(
                        f"round {round_no + 1} min_replicas_ack={acks}: "
                        f"{measured['rps']:,.0f} req/s",
                        flush=True,
                    )
        finally:
            redis.close()
    base_rps = median([r["rps"] for r in results[0]])
    rows = []
    for acks, runs in results.items():
        rps = median([r["rps"] for r in runs])
        rows.append(
            [
                f"min_replicas_ack={acks}",
                rps,
                median([r["p50"] for r in runs]),
                median([r["p99"] for r in runs]),
                " / ".join(f"{r['rps']:,.0f}" for r in runs),
                int(sum(r["non2xx"] for r in runs)),
                f"{rps / base_rps:.2f}x",
            ]
        )
    print()
    print(
        f"replication: {args.rounds} rounds x {args.duration} s, wrk -t1 -c{args.connections}, "
        "primary + 1 replica on loopback"
    )
    print(
        table(
            ["acknowledge when", "req/s", "p50 ms", "p99 ms", "rounds", "non-2xx", "vs 0"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
