"""``--concurrency N``: a child that dies is replaced, counted, and the rest carry on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from redis import Redis

from redo_hooks.testing import deliver, sample_body, wait_for

from . import kill_app
from .conftest import SECRET, MakeHooks
from .processes import env, start_workers

APP = "tests.kill_app:hooks"


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_a_sigkilled_child_is_replaced_counted_and_the_work_goes_on(
    make_hooks: MakeHooks, redis_url: str, redis: Redis
) -> None:
    parent = start_workers(APP, env(redis_url, SECRET), "--concurrency", "2")
    wait_for(lambda: len(children(parent.pid)) == 2, 20, "two worker processes")
    first = children(parent.pid)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(children(parent.pid)) == 2 and victim not in children(parent.pid),
        20,
        "the parent to start a new worker process",
    )
    assert parent.poll() is None
    assert redis.hget("rh:metrics", "respawns|") == b"1"
    hooks = make_hooks()
    hooks.add(kill_app.steady, "return", name="kill.steady")
    for n in range(5):
        assert deliver(hooks, sample_body("updated", subject="ret-s", seq=n))
    wait_for(lambda: redis.llen("kill:steady:ret-s") == 5, 30, "the events to run")
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 0
    assert children(parent.pid) == set()
