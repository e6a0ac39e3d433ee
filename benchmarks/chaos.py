"""Chaos: every fault of the faults issue in one bounded run, and what it cost.

    .venv/bin/python -m benchmarks.chaos [--duration 60] [--rate 100] [--workers 2]

A receiver (``redo-hooks serve``) takes events at a steady offered rate from
``--posters`` threads, each return's events one after another as Redo sends
them, while ``--workers`` worker parents (``redo-hooks worker --concurrency
2``) run one recording handler. A few events hold the GIL in one C call for
``--gil-seconds`` (longer than ``heartbeat_ttl``). One return's two events
(``--poison``) kill the process running them, every time: a poison pill. A
second handler, async with ``timeout=1``, works in ``asyncio.to_thread``, and
``--slow-events`` of its events take 3 s there: each attempt times out while
its thread goes on. Meanwhile, on a schedule:

* a worker process (one child) is SIGKILLed every ``--kill-every`` seconds,
  often mid-handler;
* at 30% of the run a whole worker (parent and children) is SIGKILLed, and
  started again a second later;
* at 50%, Redis is restarted (AOF on: a clean stop and start, 2 s down);
* at 70%, Redis' ``maxmemory`` is squeezed to just above what it uses, for
  ``--squeeze`` seconds.

Refused requests are not sent again (Redo would retry them later, out of
this run's order check). After the posting stops, the workers get up to
``--drain`` seconds to finish. Reports: events acknowledged, processed, lost
(acknowledged, never processed), duplicated (ran more than once: allowed,
at-least-once), order violations (an event ran after a later one of its
return had), dead letters (the poison's as ``process_crashed``, the slow
events' after their retries); overlapping attempts of the threaded handler
(an attempt started before an earlier one's thread of its return ended); and
for each fault, the requests refused after it and the time to recover: the
longest an event acknowledged after it (until the next fault, 10 s at most)
waited to be handled, against the waits before the first fault. Bounded in
time; traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import orjson
from redis import Redis
from redis.exceptions import RedisError

from redo_hooks.store.replies import text
from redo_hooks.testing import RedisServer, sample_body, wait_for

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

APP = "benchmarks.chaos_app:hooks"
CLI = [python(), "-m", "redo_hooks.cli", "--log-level", "WARNING"]
#: Seconds after a fault whose acknowledged events count towards its recovery.
WINDOW = 10.0


#: Where the workers' log lines go (``--logs``); None: nowhere.
LOGS: Path | None = None


def start_worker(env: dict[str, str], concurrency: int) -> subprocess.Popen[bytes]:
    stderr = subprocess.DEVNULL if LOGS is None else (LOGS / "workers.log").open("ab")
    return subprocess.Popen(
        [*CLI, "worker", APP, "--concurrency", str(concurrency)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,  # its own group: the whole worker can be killed at once
    )


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@dataclass
class Sent:
    """What the posters got acknowledged, and when."""

    acked: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    refused: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Fault:
    name: str
    at: float  # epoch seconds


def threaded(redis: Redis, subjects: list[str]) -> tuple[int, int]:
    """(overlapping attempts, order violations) of the threaded handler's recorded threads."""
    overlaps = violations = 0
    for subject in subjects:
        spans: list[tuple[float, float, int]] = []
        for raw in redis.lrange(f"chaos:t:{subject}", 0, -1):
            seq, began, ended_at = text(raw).split(":")
            spans.append((float(began), float(ended_at), int(seq)))
        spans.sort()
        newest, ended = -1, 0.0
        for began_at, end, number in spans:
            overlaps += began_at < ended
            violations += number < newest
            newest, ended = max(newest, number), max(ended, end)
    return overlaps, violations


def handled(redis: Redis, subjects: list[str]) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for subject in subjects:
        runs = []
        for raw in redis.lrange(f"chaos:{subject}", 0, -1):
            seq, _, at = text(raw).partition(":")
            runs.append((int(seq), float(at)))
        out[subject] = runs
    return out


def check(sent: Sent, ran: dict[str, list[tuple[int, float]]]) -> dict[str, int]:
    return outcome(
        {subject: [seq for seq, _ in acked] for subject, acked in sent.acked.items()},
        {subject: [seq for seq, _ in runs] for subject, runs in ran.items()},
    )


def delays(sent: Sent, ran: dict[str, list[tuple[int, float]]]) -> list[tuple[float, float]]:
    """(acknowledged at, seconds until first handled) of every processed event."""
    out = []
    for subject, acked in sent.acked.items():
        first: dict[int, float] = {}
        for seq, at in ran.get(subject, []):
            first.setdefault(seq, at)
        out += [(at, first[seq] - at) for seq, at in acked if seq in first]
    return out


def explain_lost(redis: Redis, sent: Sent, ran: dict[str, list[tuple[int, float]]]) -> None:
    """Where the lost events' lanes stand, for the first few returns with one."""
    shown = 0
    for subject, acked in sent.acked.items():
        done = {seq for seq, _ in ran.get(subject, [])}
        missing = [seq for seq, _ in acked if seq not in done]
        if not missing or shown == 5:
            continue
        shown += 1
        state = redis.hgetall(f"rh:lanestate:chaos.recorder:{subject}")
        owner = text(state.get(b"owner", b"")).split(":", 1)[0]
        job = redis.hgetall(f"rq:job:{owner}") if owner else {}
        print(
            f"lost on {subject}: seq {missing[:5]}; lane length "
            f"{redis.llen(f'rh:lane:chaos.recorder:{subject}')}, state "
            f"{ {text(k): text(v) for k, v in state.items()} }, owner job status "
            f"{text(job.get(b'status', b'gone'))}"
        )
    print({k: redis.zcard(f"rq:{k}:redo-hooks") for k in ("wip", "scheduled", "failed")})
    now = time.time()
    for member in redis.zrange("rq:wip:redo-hooks", 0, -1):
        score = float(redis.zscore("rq:wip:redo-hooks", text(member)) or 0)
        print(f"running: {text(member)}, heartbeat ends in {score - now:.0f} s")
    print(
        "frozen:",
        redis.zrange("rh:frozen", 0, -1),
        "intermediate:",
        redis.lrange("rq:queue:redo-hooks:intermediate", 0, -1),
    )
    print("queued", redis.llen("rq:queue:redo-hooks"), "runs sets", redis.keys("rh:runs:*"))


def print_timeline(waits: list[tuple[float, float]], faults: list[Fault]) -> None:
    """Per 5 s: events acknowledged, events handled (first runs), faults."""
    start = min(at for at, _ in waits)
    acked: Counter[int] = Counter(int((at - start) // 5) for at, _ in waits)
    done: Counter[int] = Counter(int((at + wait - start) // 5) for at, wait in waits)
    marks: dict[int, list[str]] = {}
    for fault in faults:
        marks.setdefault(int((fault.at - start) // 5), []).append(fault.name)
    rows = [
        [f"{5 * n}-{5 * n + 5}", acked[n], done[n], ", ".join(marks.get(n, []))]
        for n in range(max([*acked, *done]) + 1)
    ]
    print(table(["s", "acknowledged", "handled", "faults"], rows))


def inject(
    name: str,
    *,
    workers: list[subprocess.Popen[bytes]],
    server: RedisServer,
    redis: Redis,
    env: dict[str, str],
    args: argparse.Namespace,
) -> None:
    """One scheduled fault, ended when this returns."""
    if name.startswith("whole"):
        victim = random.randrange(len(workers))
        os.killpg(workers[victim].pid, signal.SIGKILL)
        workers[victim].wait()
        time.sleep(1)
        workers[victim] = start_worker(env, args.concurrency)
    elif name.startswith("Redis"):
        server.stop()
        time.sleep(2)
        server.start()
    else:
        used = int(redis.info("memory")["used_memory"])
        redis.config_set("maxmemory", int(used * 1.02 / 0.9))
        time.sleep(args.squeeze)
        redis.config_set("maxmemory", 0)


def main(argv: list[str] | None = None) -> dict[str, int]:
    """Run, print the report, and return the outcome's counts."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of posting")
    parser.add_argument("--rate", type=float, default=100, help="events per second offered")
    parser.add_argument("--workers", type=int, default=2, help="worker parents")
    parser.add_argument("--concurrency", type=int, default=2, help="processes per worker")
    parser.add_argument("--returns", type=int, default=40)
    parser.add_argument("--posters", type=int, default=4, help="client threads")
    parser.add_argument("--kill-every", type=float, default=6.0, help="seconds between kills")
    parser.add_argument("--gil-events", type=int, default=3, help="events that hold the GIL")
    parser.add_argument("--gil-seconds", type=int, default=15)
    parser.add_argument("--squeeze", type=float, default=8.0, help="seconds of tight memory")
    parser.add_argument("--poison", type=int, default=2, help="events of the poisoned return")
    parser.add_argument(
        "--slow-events", type=int, default=3, help="threaded events that run past their timeout"
    )
    parser.add_argument("--drain", type=float, default=180, help="seconds allowed at the end")
    parser.add_argument("--port", type=int, default=8798)
    parser.add_argument("--seed", type=int, default=1, help="for the kills' and posts' choices")
    parser.add_argument("--timeline", action="store_true", help="events per 5 s, and faults")
    parser.add_argument("--logs", type=Path, help="directory for the workers' log lines")
    parser.add_argument(
        "--faults",
        default="kills,whole,redis,memory",
        help="which faults, comma-separated (kills,whole,redis,memory), or none",
    )
    args = parser.parse_args(argv)
    random.seed(args.seed)
    global LOGS
    LOGS = args.logs
    expected = int(args.duration * args.rate)
    gil_every = max(1, expected // max(args.gil_events, 1)) if args.gil_events else 0

    with RedisServer(appendonly=True) as server:
        redis = Redis.from_url(server.url, socket_timeout=5)
        env = child_env(
            REDO_HOOKS_REDIS_URL=server.url,
            REDO_HOOKS_SECRETS=SECRET,
            REDO_HOOKS_BACKOFF="0.2",
            CHAOS_GIL_EVERY=str(gil_every),
            CHAOS_GIL_SECONDS=str(args.gil_seconds),
            CHAOS_SLOW_EVERY=str(max(1, expected // args.slow_events) if args.slow_events else 0),
        )
        url = f"http://127.0.0.1:{args.port}"
        receiver = start([*CLI, "serve", APP, "--port", str(args.port)], env, url + "/healthz")
        workers = [start_worker(env, args.concurrency) for _ in range(args.workers)]
        # Every worker process ready before the first event (a job gathers
        # every return's lanes while no worker takes it).
        wait_for(
            lambda: redis.scard("rq:workers") >= args.workers * args.concurrency,
            60,
            "the worker processes to start",
        )
        subjects = [f"ret-{r}" for r in range(args.returns)]
        sent = Sent(acked={s: [] for s in subjects})
        faults: list[Fault] = []
        started = time.monotonic()
        stop_at = started + args.duration
        counter = iter(range(10**9))

        def post(client: httpx.Client, subject: str) -> None:
            with sent.lock:
                seq = next(counter)
            kind = "return.created" if not sent.acked[subject] else "return.updated"
            try:
                status = client.post(
                    "/", content=sample_body(kind, return_id=subject, seq=seq)
                ).status_code
            except httpx.TransportError:
                status = 0
            with sent.lock:
                if status == 202:
                    sent.acked[subject].append((seq, time.time()))
                else:
                    sent.refused.append(time.time())

        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET}"}) as client:
            for seq in range(args.poison):
                body = sample_body(return_id="poison-1", seq=10**9 + seq)
                if client.post("/", content=body).status_code != 202:
                    raise SystemExit("the poison pill was refused")
        posters = start_posters(
            url, subjects, posters=args.posters, rate=args.rate, until=stop_at, post=post
        )

        chosen = set(args.faults.split(","))
        schedule = [
            (at, name)
            for at, key, name in [
                (0.3, "whole", "whole worker SIGKILLed"),
                (0.5, "redis", "Redis restarted"),
                (0.7, "memory", "maxmemory squeezed"),
            ]
            if key in chosen
        ]
        next_kill = started + args.kill_every if "kills" in chosen else float("inf")
        while time.monotonic() < stop_at:
            now = time.monotonic()
            if schedule and now >= started + schedule[0][0] * args.duration:
                _, name = schedule.pop(0)
                faults.append(Fault(name, time.time()))
                inject(name, workers=workers, server=server, redis=redis, env=env, args=args)
            elif now >= next_kill:
                next_kill = now + args.kill_every
                parent = random.choice(workers)
                alive = children(parent.pid)
                if alive:
                    faults.append(Fault("worker process SIGKILLed", time.time()))
                    os.kill(random.choice(alive), signal.SIGKILL)
            time.sleep(0.1)
        for poster in posters:
            poster.join()

        def all_handled() -> bool:
            try:
                return check(sent, handled(redis, subjects))["lost"] == 0
            except RedisError:  # Redis may still be restarting
                return False

        drained_in = drain(all_handled, args.drain)
        for process in workers:
            stop(process)
        stop(receiver)
        ran = handled(redis, subjects)
        result = check(sent, ran)
        dead = redis.zcard("rh:dead:ids")
        letters = [orjson.loads(raw) for raw in redis.hvals("rh:dead")]
        poisoned = sum(1 for d in letters if d["reason"] == "process_crashed")
        innocent_crashed = sum(
            1
            for d in letters
            if d["reason"] in ("process_crashed", "job_failed")
            and not d["subject"].startswith("poison")
        )
        overlaps, threaded_violations = threaded(redis, subjects)
        if result["lost"]:
            explain_lost(redis, sent, ran)
        redis.close()

    report(args, sent=sent, ran=ran, faults=faults, result=result, dead=dead, drained=drained_in)
    print(
        f"poison pill: {poisoned} of {args.poison} events dead-lettered as process_crashed; "
        f"innocent events dead-lettered for a crash: {innocent_crashed}; threaded handler "
        f"({args.slow_events} events past their timeout): {overlaps} overlapping attempts, "
        f"{threaded_violations} order violations"
    )
    return {
        **result,
        "acknowledged": sum(len(a) for a in sent.acked.values()),
        "dead": dead,
        "poisoned": poisoned,
        "innocent_crashed": innocent_crashed,
        "overlaps": overlaps,
        "threaded_violations": threaded_violations,
    }


def report(
    args: argparse.Namespace,
    *,
    sent: Sent,
    ran: dict[str, list[tuple[int, float]]],
    faults: list[Fault],
    result: dict[str, int],
    dead: int,
    drained: float,
) -> None:
    """The tables: the outcome, each fault's cost, and the waits."""
    acked = sum(len(a) for a in sent.acked.values())
    waits = delays(sent, ran)
    median = statistics.median(d for _, d in waits) if waits else 0.0
    print()
    print(
        f"chaos: {args.duration:.0f} s at {args.rate:.0f} events/s offered, {args.workers} "
        f"workers x {args.concurrency} processes, {args.gil_events} events holding the GIL "
        f"{args.gil_seconds} s; drained {drained:.0f} s after posting stopped"
    )
    print(
        table(
            [
                "acknowledged",
                "not acknowledged",
                "processed",
                "lost",
                "duplicated",
                "order violations",
                "dead letters",
            ],
            [
                [
                    acked,
                    len(sent.refused),
                    result["processed"],
                    result["lost"],
                    result["duplicates"],
                    result["violations"],
                    dead,
                ]
            ],
        )
    )
    calm = [d for at, d in waits if not faults or at < faults[0].at]
    rows = []
    for n, fault in enumerate(faults):
        # Until the next fault, at most WINDOW s: each fault's own effect.
        end = min(fault.at + WINDOW, faults[n + 1].at if n + 1 < len(faults) else float("inf"))
        after = [d for at, d in waits if fault.at <= at < end]
        refused = sum(1 for at in sent.refused if fault.at <= at < end)
        rows.append(
            [
                fault.name,
                f"{fault.at - faults[0].at:.0f}" if faults else "0",
                refused,
                f"{max(after):.1f}" if after else "-",
            ]
        )
    print(
        table(
            [
                "fault",
                "at s (from the first)",
                "not acknowledged after it",
                "time to recover s (worst wait of the events acked after it)",
            ],
            rows,
        )
    )
    if args.timeline and waits:
        print_timeline(waits, faults)
    print(
        f"wait from acknowledgement to handled: median {median:.2f} s; before the first "
        f"fault {statistics.median(calm) if calm else 0.0:.2f} s (median), "
        f"{max(calm) if calm else 0.0:.2f} s (worst)"
    )


if __name__ == "__main__":
    main()
