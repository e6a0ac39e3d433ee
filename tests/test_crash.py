"""A worker process killed mid-handler loses nothing: the event runs again, in order,
within the documented bound.

The dead worker's job stops renewing its 10 s heartbeat; a live worker's
maintenance (every 5 s) then re-queues it (lane jobs carry ``Retry``), and
the new run, fencing out the dead one, resumes each lane at its head event.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from datetime import datetime
from pathlib import Path

import pytest
from redis import Redis

from redo_hooks.store.connections import server_time
from redo_hooks.store.replies import text
from redo_hooks.testing import deliver, sample_event, wait_for

from .conftest import SECRET, MakeHooks, as_bytes
from .crash_app import record
from .processes import (
    blocked_waits,
    env,
    freeze,
    serving_pid,
    start_workers,
    stop,
    wait_registered,
)
from .slow_app import holds_the_gil
from .slow_app import record as slow_record

pytestmark = pytest.mark.slow

APP = "tests.crash_app:hooks"
SLOW_APP = "tests.slow_app:hooks"
GIL_APP = "tests.slow_app:gil_holder"
HEARTBEAT_TTL = 10  # the defaults, documented in docs/guarantees.md
MAINTENANCE = 5
# The documented bound: the heartbeat lapses, then a maintenance pass, which
# an idle worker runs when its blocking dequeue (MAINTENANCE s) wakes up.
BOUND = HEARTBEAT_TTL + 2 * MAINTENANCE


def fast_env(redis_url: str, **extra: str) -> dict[str, str]:
    """A worker's environment with a 2 s heartbeat and maintenance every second."""
    return env(
        redis_url,
        SECRET,
        REDO_HOOKS_HEARTBEAT_TTL="2",
        REDO_HOOKS_MAINTENANCE_INTERVAL="1",
        **extra,
    )


def test_sigkill_mid_handler_reruns_the_event_in_order_within_the_bound(
    make_hooks: MakeHooks, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    hooks = make_hooks()
    hooks.add(record, "return", name="crash.recorder")
    for n in range(4):
        kind = "return.created" if n == 0 else "return.updated"
        assert deliver(hooks, sample_event(kind, return_id="ret-k", seq=n))
    environ = env(redis_url, SECRET)
    first = start_workers(APP, environ, "--burst")
    assert first.wait(timeout=60) == -signal.SIGKILL  # killed by its handler, mid-event 1
    assert [int(x) for x in redis.lrange("crash:ret-k", 0, -1)] == [0]
    # The job is stranded as started, its heartbeat lapsing HEARTBEAT_TTL s
    # after the last renewal (not job_timeout + 60 s, RQ's SimpleWorker default).
    (member,) = redis.zrange("rq:wip:redo-hooks", 0, -1)
    lapses_at = redis.zscore("rq:wip:redo-hooks", as_bytes(member))
    assert lapses_at is not None and lapses_at <= server_time(redis) + HEARTBEAT_TTL

    said = tmp_path / "survivor.log"
    with said.open("wb") as log_file:
        survivor = start_workers(APP, environ, stderr=log_file)  # one that keeps running
    try:
        # Waited on, not timed: the bound's first part is checked on Redis'
        # clock above (the heartbeat's lapse), the maintenance lock's lifetime
        # in test_rq_internals.py, and benchmarks/chaos.py measures recovery
        # times under load.
        wait_for(
            lambda: [int(x) for x in redis.lrange("crash:ret-k", 0, -1)][:2] == [0, 1],
            BOUND + 30,
            "the stranded event to run again",
        )
        wait_for(
            lambda: [int(x) for x in redis.lrange("crash:ret-k", 0, -1)] == [0, 1, 2, 3],
            30,
            "the rest of the lane, in order",
        )
        wait_for(lambda: not redis.exists("rq:queue:redo-hooks"), 10, "the queue to empty")
    finally:
        assert stop(survivor) == 0
    # No false alarm once the rescued job finished: RQ's success handling
    # choked on the dead worker's execution, and failed the finished job.
    assert "not found in Redis" not in said.read_text()
    assert redis.zcard("rq:failed:redo-hooks") == 0


def test_a_worker_killed_inside_maintenance_does_not_switch_crash_recovery_off(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    """Its maintenance lock lasts 2 x maintenance_interval (at least 10 s), not RQ's 899 s."""
    hooks = make_hooks()
    hooks.add(record, "return", name="crash.recorder")
    for n in range(2):
        assert deliver(hooks, sample_event("return.updated", return_id="ret-m", seq=n))
    environ = fast_env(redis_url)
    first = start_workers(APP, environ, "--burst")
    assert first.wait(timeout=60) == -signal.SIGKILL  # killed by its handler, mid-event 1
    # As if a worker had died inside a maintenance pass: the lock is held.
    redis.set("rq:clean_registries:redo-hooks", 1, ex=10)
    survivor = start_workers(APP, environ)
    try:
        wait_for(
            lambda: [int(x) for x in redis.lrange("crash:ret-m", 0, -1)] == [0, 1],
            60,
            "the stranded event to run again",
        )
        # Recovery resumed once the dead holder's lock ran out. That our own
        # passes take the lock for 2 x maintenance_interval (floored at 10 s),
        # never RQ's 899 s, is pinned in test_rq_internals.py.
    finally:
        assert stop(survivor) == 0


def test_a_handler_running_far_longer_than_the_heartbeat_is_never_started_twice(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    """No false positive: the job's heartbeat is renewed while the handler runs."""
    hooks = make_hooks()
    hooks.add(slow_record, "return", name="slow.recorder")
    for n in range(2):
        assert deliver(hooks, sample_event("return.updated", return_id="ret-long", seq=n))
    environ = fast_env(
        redis_url,
        SLOW_SECONDS="8",  # four times the heartbeat's lifetime
    )
    workers = [start_workers(SLOW_APP, environ) for _ in range(2)]  # another one watching
    try:
        wait_for(lambda: redis.llen("done:ret-long") == 2, 60, "both events to finish")
    finally:
        assert [stop(w) for w in workers] == [0, 0]
    assert [int(x) for x in redis.lrange("started:ret-long", 0, -1)] == [0, 1]  # once each


def test_a_handler_holding_the_gil_is_not_taken_for_dead(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    """Its process's heartbeat thread starves; its parent's heartbeats don't.

    The first event holds the GIL for five heartbeat lifetimes while another
    worker watches: neither it nor the lane's next event may start again
    before it ends.
    """
    hooks = make_hooks()
    hooks.add(holds_the_gil, "return", name="slow.gil")
    for n in range(2):
        assert deliver(hooks, sample_event("return.updated", return_id="ret-gil", seq=n))
    environ = fast_env(
        redis_url,
        GIL_SECONDS="10",
    )
    workers = [start_workers(GIL_APP, environ) for _ in range(2)]
    try:
        wait_for(lambda: redis.llen("gil:ret-gil") >= 4, 60, "both events to finish")
    finally:
        assert [stop(w) for w in workers] == [0, 0]
    assert [text(x) for x in redis.lrange("gil:ret-gil", 0, -1)] == [
        "start 0",
        "end 0",
        "start 1",
        "end 1",
    ]
    assert redis.zcard("rq:failed:redo-hooks") == 0


def held_for(log: Path) -> float:
    """Seconds between the first and the last rescue a worker held, by its log."""
    held = [
        json.loads(line)
        for line in log.read_text().splitlines()
        if "stranded_job_rescue_held" in line and line.endswith("}")  # (whole lines only)
    ]
    times = [datetime.fromisoformat(line["timestamp"]).timestamp() for line in held]
    return max(times) - min(times) if times else 0.0


def test_a_job_a_frozen_process_took_is_not_run_elsewhere_meanwhile(
    make_hooks: MakeHooks, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    """An idle slot's wait on the queue is served while its process is frozen.

    Redis hands the job to the frozen process; it starts it when it wakes.
    Rescued meanwhile as "stranded", it would run twice at once: once
    elsewhere (slow here), once in the woken process, fencing the first.

    In production a GIL-holding handler freezes the process (the test above);
    here SIGSTOP does, as only a freeze from outside can be timed against the
    slots' waits: the process is stopped while Redis holds two of them.
    """
    hooks = make_hooks()
    hooks.add(slow_record, "return", name="slow.recorder")
    environ = fast_env(redis_url, SLOW_SECONDS="6")
    frozen = start_workers(SLOW_APP, environ)
    watcher = None
    pid: int | None = None
    log = tmp_path / "watcher.log"
    try:
        wait_registered(redis, [frozen])
        pid = serving_pid(redis, "redo-hooks")
        while True:
            wait_for(lambda: blocked_waits(redis, pid) >= 2, 30, "two slots to wait on the queue")
            freeze(pid)
            if blocked_waits(redis, pid) >= 2:
                break
            os.kill(pid, signal.SIGCONT)  # a wait ended as the process stopped: again
        assert deliver(hooks, sample_event("return.updated", return_id="ret-o", seq=1))
        wait_for(
            lambda: redis.llen("rq:queue:redo-hooks:intermediate") == 1,
            5,
            "a slot of the frozen process to take the job",
        )
        with log.open("wb") as stderr:
            watcher = start_workers(SLOW_APP, environ, stderr=stderr)
        # Unheld, a pass notes the job and one heartbeat_ttl (2 s) later rescues it.
        wait_for(
            lambda: held_for(log) > 3,
            60,
            "the watcher's maintenance to pass the job by for over 3 s",
        )
        assert redis.llen("started:ret-o") == 0
        assert redis.llen("rq:queue:redo-hooks:intermediate") == 1
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: redis.llen("done:ret-o") >= 1, 60, "the woken process to run it")
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert [stop(w) for w in (frozen, watcher) if w is not None] == [0] * (1 + bool(watcher))
    assert [int(x) for x in redis.lrange("started:ret-o", 0, -1)] == [1]  # once, not twice
    assert [int(x) for x in redis.lrange("done:ret-o", 0, -1)] == [1]
