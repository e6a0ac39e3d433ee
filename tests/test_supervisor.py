"""``--concurrency N``: a child that dies is replaced, counted, and the rest carry on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from redo_hooks.cli import main
from redo_hooks.dispatch.supervisor import RESPAWN_BACKOFF, beat_alive, respawn_delay
from redo_hooks.testing import deliver, sample_body, wait_for

from . import crash_app, kill_app
from .conftest import SECRET, MakeHooks
from .processes import children, env, start_workers

APP = "tests.kill_app:hooks"


def test_a_sigkilled_child_is_replaced_counted_and_the_work_goes_on(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    parent = start_workers(APP, env(redis_url, SECRET), "--concurrency", "2")
    # Two worker processes, and the one that runs the quarantine alone.
    wait_for(lambda: len(children(parent.pid)) == 3, 20, "three worker processes")
    wait_for(lambda: redis.zcard("rh:processes") == 3, 20, "all three listed")
    listed = set(redis.zrange("rh:processes", 0, -1))  # what rescuers check the beats of
    first = children(parent.pid)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(children(parent.pid)) == 3 and victim not in children(parent.pid),
        20,
        "the parent to start a new worker process",
    )
    assert parent.poll() is None
    assert redis.hget("rh:metrics", "respawns|") == b"1"
    # The dead child unlisted, its successor listed (before its fork).
    relisted = set(redis.zrange("rh:processes", 0, -1))
    assert len(relisted) == 3 and len(relisted & listed) == 2
    hooks = make_hooks()
    hooks.add(kill_app.steady, "return", name="kill.steady")
    for n in range(5):
        assert deliver(hooks, sample_body("return.updated", return_id="ret-s", seq=n))
    wait_for(lambda: redis.llen("kill:steady:ret-s") == 5, 30, "the events to run")
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 0
    assert children(parent.pid) == set()
    assert redis.zcard("rh:processes") == 0


def test_a_child_killed_mid_handler_has_its_job_rerun_without_waiting_for_the_heartbeat(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    """The parent saw it die: its jobs' heartbeats are ended at once, not left to lapse."""
    hooks = make_hooks()
    hooks.add(crash_app.dies_alone, "return", name="crash.alone")
    for n in range(3):
        assert deliver(hooks, sample_body("return.updated", return_id="ret-a", seq=n))
    environ = env(
        redis_url, SECRET, REDO_HOOKS_HEARTBEAT_TTL="120", REDO_HOOKS_MAINTENANCE_INTERVAL="1"
    )
    parent = start_workers("tests.crash_app:alone", environ)
    try:
        # Waiting on the heartbeat would take 120 s.
        wait_for(
            lambda: [int(x) for x in redis.lrange("crash:ret-a", 0, -1)] == [0, 1, 2],
            60,
            "the killed child's event to run again, then the rest in order",
        )
        assert redis.hget("rh:metrics", "respawns|") == b"1"
    finally:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0


def test_a_process_beat_unlists_an_execution_it_no_longer_runs(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Redis was lost as a job slot ended: its parent must not vouch for that job forever."""
    hooks = make_hooks(heartbeat_ttl=2)
    redis.sadd("rh:runs:p", "gone-job:0123")  # its SREM never reached Redis
    stop = beat_alive(hooks.settings, "rh:runs:p")
    try:
        wait_for(lambda: not redis.sismember("rh:runs:p", "gone-job:0123"), 10, "it to be unlisted")
        assert redis.exists("rh:runs:p:alive")  # and the process says it runs Python
    finally:
        stop.set()


def niceness(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), counted after the command name


@pytest.mark.parametrize("nice", [None, "0", "3"])
def test_worker_processes_yield_the_cpu_and_their_parent_does_not(
    redis_url: str, redis: Redis, nice: str | None
) -> None:
    extra = {} if nice is None else {"REDO_HOOKS_WORKER_NICE": nice}
    parent = start_workers(APP, env(redis_url, SECRET, **extra))
    # Registered with RQ: the child has set its niceness (it does so first).
    wait_for(lambda: len(children(parent.pid)) == 2, 20, "the worker and quarantine processes")
    wait_for(
        lambda: len(list(redis.scan_iter("rq:worker:*", _type="hash"))) >= 2,
        20,
        "both to register with RQ",
    )
    expected = 10 if nice is None else int(nice)  # the default: 10
    assert niceness(parent.pid) == os.nice(0)
    for child in children(parent.pid):
        assert niceness(child) == min(19, os.nice(0) + expected)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 0


def test_the_alive_file_is_touched_while_the_parent_loops_and_alive_reads_it(
    redis_url: str, tmp_path: Path
) -> None:
    """The workers' liveness probe (they have no HTTP port): fresh while the parent
    runs, stale once it stops touching, absent before it starts."""
    alive_file = tmp_path / "alive"

    def alive(within: str = "30") -> int:
        result = CliRunner().invoke(main, ["alive", str(alive_file), "--within", within])
        return result.exit_code

    assert alive() == 1  # no worker touched it yet
    parent = start_workers(APP, env(redis_url, SECRET), "--alive-file", str(alive_file))
    try:
        wait_for(alive_file.exists, 30, "the parent to touch the alive file")
        first = alive_file.stat().st_mtime
        wait_for(lambda: alive_file.stat().st_mtime > first, 30, "a second touch")
        assert alive() == 0
    finally:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
    old = alive_file.stat().st_mtime - 120
    os.utime(alive_file, (old, old))
    assert alive() == 1  # a parent that stopped touching it is not alive


def test_a_slot_whose_process_keeps_dying_young_is_never_empty_for_more_than_5_s() -> None:
    delays = [respawn_delay(n) for n in range(1, 100)]
    assert delays[:6] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert max(delays) == RESPAWN_BACKOFF[1] == 5.0
