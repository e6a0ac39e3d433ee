"""Operator reads at scale: 20,000 returns each holding one waiting event.

    .venv/bin/python -m benchmarks.operators [--returns 20000] [--dead 5000] [--rounds 3]

Loads ``--returns`` waiting events (one per return, two handlers: 40,000
lanes) with the real ingest script, plus ``--dead`` dead letters, into a
private Redis; then times, best and median of ``--rounds``:

* ``redo-hooks status APP`` (the command, in a subprocess, start-up included;
  and ``ops.status.snapshot`` alone, in-process);
* one worker maintenance pass (RQ's registry cleaning, the orphaned-lane
  sweep, the index trim), in-process, with no worker running;
* ``dead list --limit 50`` and a full ``dead list`` of every letter.

Targets: status and a maintenance pass < 1 s. The drain of the same shape
against stock RQ is ``benchmarks.dispatch --events 20000 --returns 20000``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from functools import partial

from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.dispatch.worker import build
from redo_hooks.ops.dead_letters import DeadLetters
from redo_hooks.ops.status import snapshot
from redo_hooks.receiver.body import parse_body
from redo_hooks.store import lua
from redo_hooks.store.ingest import IngestPlan, Routed
from redo_hooks.store.keys import Keys
from redo_hooks.testing import RedisServer, sample_body

from .common import SECRET, child_env, python, table

APP = "benchmarks.operators_app:hooks"
HANDLERS = ["ops.a", "ops.b"]


def load(url: str, returns: int, dead: int) -> None:
    """``returns`` waiting events over as many returns, and ``dead`` dead letters."""
    hooks = RedoHooks(redis_url=url, secrets=[SECRET])
    redis = Redis.from_url(url)
    plan = IngestPlan(hooks.settings, Keys())
    script = redis.register_script(lua.source("ingest"))
    batch: list[Routed] = []
    for n in range(returns):
        batch.append(Routed(parse_body(sample_body(return_id=f"ret-{n}", seq=n)), HANDLERS))
        if len(batch) == 200 or n == returns - 1:
            keys, args = plan.build(batch)
            script(keys=keys, args=args)
            batch = []
    # Dead letters as lane_dead.lua writes them (a record with a traceback each).
    record = (
        b'{"id":"%s","reason":"handler_failed","handler":"ops.a","subject":"ret-%d",'
        b'"event_key":"k","attempts":4,"first_error":"e","error":"RuntimeError: down",'
        b'"traceback":"%s","dead_at":%f,"parked":false}'
    )
    trace = b"Traceback (most recent call last):\\n" + b"  File x, line 1\\n" * 40
    with redis.pipeline(transaction=False) as pipe:
        for n in range(dead):
            dead_id, at = f"{n:032x}", 1_700_000_000 + n
            pipe.hset("rh:dead", dead_id, record % (dead_id.encode(), n, trace, at))
            pipe.zadd("rh:dead:ids", {dead_id: at})
        pipe.execute()
    redis.close()


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        out.append(time.perf_counter() - began)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=20_000)
    parser.add_argument("--dead", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with RedisServer() as server:
        load(server.url, args.returns, args.dead)
        env = child_env(REDO_HOOKS_REDIS_URL=server.url)
        hooks = RedoHooks(redis_url=server.url, secrets=[SECRET])
        for name in HANDLERS:
            hooks.add(lambda event: None, "return", name=name)
        redis = Redis.from_url(server.url)
        command = [python(), "-m", "redo_hooks.cli", "status", APP]

        def status_command() -> None:
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)

        worker, runtime = build(hooks)
        letters = DeadLetters(redis, hooks.settings, hooks.registry)

        def maintenance() -> None:
            worker.run_maintenance()  # RQ's steps, then ours, under the lock

        current = snapshot(redis, hooks.settings, hooks.registry)
        assert current.events_waiting == args.returns * len(HANDLERS), current
        assert current.dead_letters == args.dead, current
        rows = []
        operations: list[tuple[str, Callable[[], object]]] = [
            ("redo-hooks status (command)", status_command),
            (
                "status snapshot (in-process)",
                partial(snapshot, redis, hooks.settings, hooks.registry),
            ),
            ("maintenance pass", maintenance),
            ("dead list --limit 50", partial(letters.list, limit=50)),
            (f"dead list, all {args.dead:,}", letters.list),
        ]
        for label, call in operations:
            times = timed(call, args.rounds)
            rows.append([label, min(times) * 1000, statistics.median(times) * 1000])
        runtime.close()
        print()
        print(
            f"operator reads: {args.returns:,} returns x 1 waiting event x {len(HANDLERS)} "
            f"handlers ({args.returns * len(HANDLERS):,} lanes), {args.dead:,} dead letters; "
            f"{args.rounds} rounds"
        )
        print(table(["operation", "best ms", "median ms"], rows))


if __name__ == "__main__":
    main()
