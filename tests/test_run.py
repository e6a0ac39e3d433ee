"""``redo-hooks run``: the receiver and its workers in one command, stopped by one SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess

import httpx2 as httpx
import pytest
from redis import Redis

from redo_hooks.testing import sample_body, wait_for

from .conftest import SECRET
from .processes import CLI, ROOT, STARTED, children, env, free_port, wait_healthy

APP = "tests.e2e_app:hooks"

pytestmark = pytest.mark.slow


def start(redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "--log-level", "WARNING", "run", APP, "--port", str(port), "--concurrency", "1"],
        env=env(redis_url, SECRET),
        cwd=ROOT,
        start_new_session=True,  # its own group: the test cleans every process of it up
    )
    STARTED.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(process, url, 30)
    return process, url


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # (a zombie is gone for our purpose)
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_one_command_receives_and_runs_an_event_and_one_sigterm_stops_all(
    redis_url: str, redis: Redis
) -> None:
    process, url = start(redis_url)
    (workers,) = children(process.pid)  # the worker service, supervising its own processes
    wait_for(lambda: len(children(workers)) >= 1, 30, "the worker processes to start")
    family = {workers, *children(workers)}
    answer = httpx.post(
        url + "/",
        content=sample_body(return_id="ret-run", seq=7),
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert answer.status_code == 202, answer.text
    wait_for(lambda: redis.lrange("e2e:first:ret-run", 0, -1) == [b"7"], 30, "the handler")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    wait_for(lambda: not any(alive(pid) for pid in family), 10, "every worker process to end")


def test_when_the_workers_die_the_receiver_stops_too(redis_url: str) -> None:
    """Never a receiver acknowledging events that nothing runs."""
    process, _ = start(redis_url)
    (workers,) = children(process.pid)
    os.kill(workers, signal.SIGKILL)
    assert process.wait(timeout=60) == 1
