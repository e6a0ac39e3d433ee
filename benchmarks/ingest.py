"""Ingest benchmark: the receiver against two baselines, measured in the same run.

    .venv/bin/python -m benchmarks.ingest [--duration 10] [--rounds 3] [--rtt 2.5]

wrk (``apt-get install wrk``) posts realistic events (the spec's example,
~4.7 KB) with a unique ``at`` per request and ``return.id`` cycling over
``--subjects`` returns, so dedupe never hits. Single-process uvicorn servers
are measured, interleaved within each round:

* ``bare``      — Starlette reads the body and answers 202;
* ``yardstick`` — the fixed ruler, ``benchmarks/yardstick/reference_model.py``:
                  ``hmac.compare_digest``, ``orjson.loads`` and a plain pydantic
                  model (skipped, saying so, where that file is absent);
* ``validate``  — bearer check + strict parse + full model validation, 202;
* ``receiver``  — ``redo-hooks serve`` with one handler: all of the above plus
                  the atomic dedupe + store + route step in Redis (AOF off),
                  logging at INFO to /dev/null;
* ``receiver, 2 processes`` — the same with ``serve --workers 2``;
* with ``--tracing``: ``receiver, no OTel API`` (the OpenTelemetry API hidden:
  tracing code skipped entirely) and ``receiver, OTel SDK`` (the SDK
  recording every span, a batch processor and an exporter that drops them);
  the plain ``receiver`` row has the API installed and no SDK configured;
* with ``--drift``: the schema-drift check off, and on every body (the
  plain ``receiver`` row checks one body per 0.1 s, the default);
* with ``--rtt MS``: ``receiver via proxy +0 ms`` and ``+MS ms``: the
  receiver reaches Redis through ``benchmarks/latency_proxy.py`` adding
  nothing, then ``MS`` to each round trip (production Redis is a network
  hop away); the p99 column is the acknowledgement's.

The table shows the median of the rounds; the ratio columns are against
``validate`` (target: receiver >= 0.5x) and against the yardstick. After
each receiver run the number of events stored in Redis is checked against
the 2xx responses, and ingest.lua's Redis CPU per event is read from
``INFO commandstats`` (EVALSHA time over the requests), with how many events
the receiver's group commit put in one call. CPU columns count a server's
whole process tree.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from pathlib import Path

import orjson
from redis import Redis

from redo_hooks.testing import RedisServer, sample_event

from .common import (
    ROOT,
    SECRET,
    YARDSTICK,
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
from .latency_proxy import proxied

LUA = """
local template = [==[%(template)s]==]
local subjects = %(subjects)d
local nonce = "%(nonce)s"
local n = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(secret)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local at = string.format("2026-01-01T%%02d:%%02d:%%02d.%%06dZ",
    math.floor(n / 3600000000) %% 24, math.floor(n / 60000000) %% 60,
    math.floor(n / 1000000) %% 60, n %% 1000000)
  local values = {subject = "ret-" .. (n %% subjects), at = at, nonce = nonce}
  local body = template:gsub("@(%%a+)@", values)
  return wrk.format(nil, "/", nil, body)
end
"""


def lua_script(subjects: int, nonce: str) -> str:
    event = sample_event("return.updated", return_id="SUBJECT")
    event["at"] = "AT"
    event["benchNonce"] = "NONCE"  # an unknown field: kept, and unique per run
    template = orjson.dumps(event).decode()
    for name in ("SUBJECT", "AT", "NONCE"):
        template = template.replace(f'"{name}"', f'"@{name.lower()}@"')
    return LUA % {"template": template, "subjects": subjects, "nonce": nonce, "secret": SECRET}


def fresh_script(directory: str, name: str, subjects: int) -> Path:
    """A wrk script of events no earlier run sent (its own nonce): no run repeats another's."""
    path = Path(directory) / f"{name}.lua"
    path.write_text(lua_script(subjects, uuid.uuid4().hex[:8]))
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its threads) and its live descendants."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def servers(
    port: int, redis_url: str, tracing: bool = False, drift: bool = False
) -> dict[str, list[str]]:
    cli = [python(), "-m", "redo_hooks.cli", "--log-format", "json", "serve"]
    receiver = [*cli, "benchmarks.bench_app:hooks", "--port", str(port)]
    traced: dict[str, list[str]] = {}
    if tracing:
        hidden = f"PYTHONPATH={Path(__file__).parent / 'no_otel'}:{ROOT}"
        traced = {
            "receiver, no OTel API": ["env", hidden, *receiver],
            "receiver, OTel SDK": [*cli, "benchmarks.traced_app:hooks", "--port", str(port)],
        }
    if drift:
        never, every = "REDO_HOOKS_DRIFT_SAMPLE_INTERVAL=1e9", "REDO_HOOKS_DRIFT_SAMPLE_INTERVAL=0"
        traced["receiver, drift check off"] = ["env", never, *receiver]
        traced["receiver, drift check on every body"] = ["env", every, *receiver]
    uvicorn = [
        python(),
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return {
        "bare": [*uvicorn, "benchmarks.baselines:bare"],
        **(
            {"yardstick": [*uvicorn, "benchmarks.baselines:yardstick"]}
            if YARDSTICK.exists()
            else {}
        ),
        "validate": [*uvicorn, "benchmarks.baselines:validate"],
        "receiver": receiver,
        **traced,
        "receiver, 2 processes": [*receiver, "--workers", "2"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="add rows without the OpenTelemetry API, and with its SDK recording spans",
    )
    parser.add_argument(
        "--drift",
        action="store_true",
        help="add rows with the schema-drift check off, and on every body",
    )
    parser.add_argument(
        "--rtt", type=float, help="add rows with Redis behind a latency proxy adding MS"
    )
    args = parser.parse_args()
    wrk = need("wrk", "apt-get install wrk")

    results: dict[str, list[dict[str, float]]] = {}
    with RedisServer() as server, tempfile.TemporaryDirectory() as tmp:
        redis = Redis.from_url(server.url)
        env = child_env(
            REDO_HOOKS_REDIS_URL=server.url,
            REDO_HOOKS_SECRETS=SECRET,
            BENCH_YARDSTICK=str(YARDSTICK),
        )
        if not YARDSTICK.exists():
            print(f"no yardstick row: {YARDSTICK} is missing", flush=True)
        url = f"http://127.0.0.1:{args.port}"

        def measure(name: str, argv: list[str], env: dict[str, str], round_no: int) -> None:
            redis.flushall()
            # Warm-up and measurement get different nonces: every request
            # is a new event (a repeat would be a cheaper duplicate).
            warm = fresh_script(tmp, f"{name}-{round_no}-warm", args.subjects)
            script = fresh_script(tmp, f"{name}-{round_no}", args.subjects)
            process = start(argv, env, url + "/healthz")
            try:
                warmed = run_wrk(wrk, warm, url, args.connections, 2)
                cpu0, rcpu0 = cpu_seconds(process.pid), redis_cpu(redis)
                redis.config_resetstat()
                out = run_wrk(wrk, script, url, args.connections, args.duration)
                cpu1, rcpu1 = cpu_seconds(process.pid), redis_cpu(redis)
                lua = redis.info("commandstats").get("cmdstat_evalsha", {})
            finally:
                stop(process)
            measured = parse_wrk(out)
            measured["cpu_us"] = (cpu1 - cpu0) / measured["requests"] * 1e6
            measured["redis_us"] = (rcpu1 - rcpu0) / measured["requests"] * 1e6
            if lua:  # the receivers: ingest.lua's own Redis CPU, and its batching
                measured["lua_us"] = lua["usec"] / measured["requests"]
                measured["per_call"] = measured["requests"] / lua["calls"]
            if name.startswith("receiver"):
                stored = sum(1 for _ in redis.scan_iter("rh:ev:*", count=5000))
                measured["stored"] = stored
                measured["sent"] = parse_wrk(warmed)["requests"] + measured["requests"]
            results.setdefault(name, []).append(measured)
            print(f"round {round_no + 1} {name}: {measured['rps']:,.0f} req/s", flush=True)

        for round_no in range(args.rounds):
            for name, argv in servers(args.port, server.url, args.tracing, args.drift).items():
                measure(name, argv, env, round_no)
            if args.rtt is not None:
                receiver = servers(args.port, server.url)["receiver"]
                for added in (0.0, args.rtt):
                    with proxied(server.url, added) as via:
                        name = f"receiver via proxy +{added:g} ms"
                        measure(name, receiver, {**env, "REDO_HOOKS_REDIS_URL": via}, round_no)
        redis.close()

    validate = median([r["rps"] for r in results["validate"]])
    ruler = median([r["rps"] for r in results["yardstick"]]) if "yardstick" in results else 0.0
    rows = []
    for name, runs in results.items():
        rps = median([r["rps"] for r in runs])
        rows.append(
            [
                name,
                rps,
                median([r["p50"] for r in runs]),
                median([r["p99"] for r in runs]),
                " / ".join(f"{r['rps']:,.0f}" for r in runs),
                median([r["cpu_us"] for r in runs]),
                median([r["redis_us"] for r in runs]),
                int(sum(r["non2xx"] for r in runs)),
                f"{rps / validate:.2f}x",
                f"{rps / ruler:.2f}x" if ruler else "-",
            ]
        )
    print()
    print(
        f"ingest: {args.rounds} rounds x {args.duration} s, wrk -t1 -c{args.connections}, "
        f"{args.subjects} returns, one uvicorn process each"
    )
    print(
        table(
            [
                "endpoint",
                "req/s",
                "p50 ms",
                "p99 ms",
                "per round",
                "server CPU µs/req",
                "redis CPU µs/req",
                "non-2xx",
                "vs validate",
                "vs yardstick",
            ],
            rows,
        )
    )
    for name in ("receiver", "receiver, 2 processes"):
        for run in results[name]:
            print(
                f"{name} run: {int(run['sent'])} events sent (warm-up included), "
                f"{int(run['stored'])} stored in Redis; ingest.lua {run['lua_us']:.1f} µs "
                f"of Redis CPU per event, {run['per_call']:.1f} events per call"
            )
    one = median([r["rps"] for r in results["receiver"]])
    two = median([r["rps"] for r in results["receiver, 2 processes"]])
    print(f"receiver, 2 processes / 1 process: {two / one:.2f}x")


if __name__ == "__main__":
    main()
