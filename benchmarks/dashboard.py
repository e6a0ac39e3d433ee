"""Dashboard at scale: server time of each page with a million stored events.

    .venv/bin/python -m benchmarks.dashboard [--events 1000000] [--baseline 10000] [--requests 15]

Loads a private ``redis-server`` through the real ``ingest.lua`` (batches of
500, as a receiver under load sends them): ``--events`` events over
``events / 3`` returns and ``events / 6`` orders, two handlers each; then
writes each run as a worker does (``ok``; every 100th event's second
handler ``dead``, with its dead letter, grouped into five issues). Then
renders each page in-process through the dashboard's ASGI app (Starlette's
TestClient: no network, so this is server time), the median of
``--requests`` requests, first at ``--baseline`` events and again
at ``--events``, in the same run. The ratio column is large / baseline: a
page that scans would grow with the store (x100 from 10k to 1M); targets
are < 200 ms for the events page and a timeline, < 300 ms for the overview.
Also prints Redis bytes per handler run (the run log's own cost).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import RedoHooks
from redo_hooks.dashboard import create_dashboard
from redo_hooks.store import lua, runlog
from redo_hooks.store.events import Incoming
from redo_hooks.store.ingest import IngestPlan, Routed, read_reply
from redo_hooks.store.issues import fingerprint, index_issues
from redo_hooks.store.keys import Keys
from redo_hooks.store.retention import index_parked_letters
from redo_hooks.testing import RedisServer, sample_body

from .common import median, table

TOKEN = "bench-admin-token-0123456789"
HANDLERS = ["warehouse", "refunds"]
BATCH = 500


def load(hooks: RedoHooks, client: Redis, start: int, stop: int) -> None:
    """Store events ``start..stop`` and log their runs, as receiver and worker would."""
    settings = hooks.settings
    keys = Keys(settings.key_prefix)
    plan = IngestPlan(settings, keys)
    script = client.register_script(lua.source("ingest"))
    template = sample_body("return.created", subject="SUBJECT", merchantName="SEQ")
    now = time.time()
    for first in range(start, stop, BATCH):
        batch = []
        for n in range(first, min(stop, first + BATCH)):
            subject, order = f"ret-{n // 3:07d}", f"#{n // 6:07d}"
            body = template.replace(b'"SUBJECT"', f'"{subject}"'.encode()).replace(
                b'"SEQ"', f'"shop {n}"'.encode()
            )
            incoming = Incoming(
                type="created",
                subject=subject,
                key=f"{n:032x}",
                body=body,
                order_id=f"order-{n // 6}",
                order_name=order,
            )
            batch.append(Routed(incoming, HANDLERS))
        ks, args = plan.build(batch)
        stored, _ = read_reply(script(keys=ks, args=args))
        assert all(r == 1 for r in stored), "an event was not stored"
        with client.pipeline(transaction=False) as pipe:
            for routed in batch:
                key = routed.incoming.key
                n = int(key, 16)
                ev = keys.event(key)
                pipe.hset(ev, runlog.field("warehouse"), runlog.pack("ok", 1, now, 0.012))
                if n % 100 == 0:
                    error = dead_error(n)
                    run = runlog.pack("dead", 3, now, 0.2, error)
                    pipe.hset(ev, runlog.field("refunds"), run)
                    pipe.zadd(keys.by_outcome("dead"), {key: now})
                    letter = dead_letter(n, key, error, now)
                    pipe.hset(keys.dead, letter["id"], orjson.dumps(letter))
                    pipe.zadd(keys.dead_ids, {letter["id"]: now})
                else:
                    pipe.hset(ev, runlog.field("refunds"), runlog.pack("ok", 1, now, 0.03))
                pipe.hset(ev, "pending", 0)
            pipe.execute()
    # Grouped into issues by the same script as the letters' own writes, and
    # the parked index marked complete: what a worker's maintenance does.
    client.delete(keys.issues_indexed, keys.parked_indexed)
    index_issues(client, keys)
    index_parked_letters(client, keys)
    # The lanes and jobs the ingest made are not what is measured here.
    for pattern in ("rh:lane:*", "rh:lanestate:*", "rh:joblanes:*", "rq:job:*"):
        for found in client.scan_iter(pattern, count=10_000):
            client.unlink(found)
    client.delete("rq:queue:redo-hooks", "rh:waiting", "rh:waiting:events")


#: The refunds handler's errors: one issue each (their numbers are masked).
FAILURES = ["timed out", "said 500", "said 502", "refused the card", "lost the order"]


def dead_error(n: int) -> str:
    return f"RuntimeError: refunds API {FAILURES[n // 100 % len(FAILURES)]} for event {n}"


def dead_letter(n: int, key: str, error: str, now: float) -> dict[str, Any]:
    """A dead letter as ``lane_dead.lua`` writes it, but for its issue (grouped after)."""
    return {
        "id": f"{n:032x}",
        "reason": "handler_failed",
        "handler": "refunds",
        "subject": f"ret-{n // 3:07d}",
        "event_key": key,
        "attempts": 3,
        "first_error": error,
        "error": error,
        "traceback": f"Traceback (most recent call last):\n  ...\n{error}\n",
        "dead_at": now,
        "parked": False,
    }


def bytes_per_run(client: Redis, events: int, sample: int = 200) -> float:
    """``MEMORY USAGE`` of event hashes with their runs, minus without them, per run."""
    total = 0
    for n in range(events - sample, events):
        key = f"rh:ev:{n:032x}"
        runs = {f: client.hget(key, f) for f in map(runlog.field, HANDLERS)}
        with_runs = int(client.memory_usage(key, samples=0) or 0)
        client.hdel(key, *runs)
        total += with_runs - int(client.memory_usage(key, samples=0) or 0)
        client.hset(key, mapping={f: v for f, v in runs.items() if v is not None})
    return total / (sample * len(HANDLERS))


def pages(events: int) -> dict[str, str]:
    mid = events // 2
    return {
        "overview": "/",
        "events": "/events",
        "events by order": f"/events?order=%23{mid // 6:07d}",
        "events by outcome=dead": "/events?outcome=dead",
        "events by type, last hour": "/events?type=return.created&since=1h",
        # None stored: the page stops after scan_limit events read, offering more.
        "events by a type never sent": "/events?type=return.backfill",
        "timeline": f"/returns/ret-{mid // 3:07d}",
        "dead letters": "/dead",
        "issues": "/issues",
        "an issue": f"/issues/{fingerprint('refunds', dead_error(0))[0]}",
    }


def measure(app: Any, events: int, requests: int) -> dict[str, float]:
    out = {}
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for name, path in pages(events).items():
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = client.get(path, headers=headers)
                times.append(time.perf_counter() - began)
                assert answer.status_code == 200, (path, answer.status_code)
            out[name] = median(times) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=15)
    options = parser.parse_args()
    with RedisServer() as server:
        client = Redis.from_url(server.url)
        hooks = RedoHooks(
            redis_url=server.url,
            secrets=["s" * 20],
            retention=30 * 86400,
            max_waiting_events=0,  # nothing runs them: no backlog ceiling
        )
        app = create_dashboard(hooks.settings, tokens=[f"admin:bench={TOKEN}"])
        began = time.perf_counter()
        before = int(client.info("memory")["used_memory"])
        load(hooks, client, 0, options.baseline)
        small = measure(app, options.baseline, options.requests)
        without_runs = int(client.info("memory")["used_memory"]) - before
        load(hooks, client, options.baseline, options.events)
        loaded = time.perf_counter() - began
        large = measure(app, options.events, options.requests)
        run_bytes = bytes_per_run(client, options.events)
        stored = client.zcard("rh:events")
        print(
            f"\n{stored:,} events stored in {loaded:.0f} s; Redis used_memory "
            f"{int(client.info('memory')['used_memory']) / 2**30:.2f} GiB "
            f"({without_runs / max(1, options.baseline):,.0f} B per event at the baseline)\n"
        )
        rows = [(name, small[name], large[name], large[name] / small[name]) for name in small]
        print(
            table(
                (
                    "page (server time, median)",
                    f"ms at {options.baseline:,}",
                    f"ms at {stored:,}",
                    "ratio",
                ),
                rows,
            )
        )
        print(f"\nrun log: {run_bytes:.0f} B of Redis memory per handler run (MEMORY USAGE)")
        client.close()


if __name__ == "__main__":
    main()
