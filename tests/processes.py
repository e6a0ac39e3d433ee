"""Real receiver and worker processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx

from redo_hooks.dev.redis_server import free_port
from redo_hooks.testing import env_without_redo_hooks, wait_for

__all__ = ["free_port"]  # re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "redo_hooks.cli"]


def children(pid: int) -> set[int]:
    """The pids of a process's children (Linux)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def serving_pid(redis: Any, queue: str) -> int:
    """The pid of the one worker process whose RQ workers take jobs from ``queue``.

    Waits for it to register (a service's processes register one by one).
    """

    def pids() -> set[int]:  # (RQ lists its workers' keys there)
        return {int(redis.hget(key, "pid")) for key in redis.smembers(f"rq:workers:{queue}")}

    wait_for(lambda: len(pids()) == 1, 30, f"a worker process to take jobs from {queue}")
    (pid,) = pids()
    return pid


def freeze(pid: int) -> None:
    """SIGSTOP ``pid`` and wait until every thread of it is stopped (Linux)."""
    os.kill(pid, signal.SIGSTOP)

    def stopped() -> bool:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        # The state follows the command, which is in parentheses and may hold spaces.
        return all((t / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T" for t in tasks)

    wait_for(stopped, 10, f"process {pid} to stop")


def blocked_waits(redis: Any, pid: int) -> int:
    """How many connections of process ``pid`` Redis holds blocked (in a wait on a queue).

    Redis names each client by its address; the process's sockets give
    their local ports (``/proc``, Linux).
    """
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # (closed meanwhile)
            link = os.readlink(fd)
            if link.startswith("socket:["):
                sockets.add(link.removeprefix("socket:[").removesuffix("]"))
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in sockets:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sum(
        "b" in client["flags"] and int(client["addr"].rsplit(":", 1)[1]) in ports
        for client in redis.client_list()
    )


def env(redis_url: str, secret: str, **extra: str) -> dict[str, str]:
    out = env_without_redo_hooks()
    out.update(
        REDO_HOOKS_REDIS_URL=redis_url,
        REDO_HOOKS_SECRETS=secret,
        # An rq put first on the path (scripts/check-rq-upgrade) reaches the processes too.
        PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
        **extra,
    )
    return out


def start_server(
    app: str, environ: dict[str, str], stderr: Any = None, *options: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "--log-level", "WARNING", "serve", app, "--port", str(port), *options],
        env=environ,
        cwd=ROOT,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(process, url, 20)
    return process, url


def wait_healthy(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    """Wait until the receiver ``process`` serves at ``url`` answers /healthz."""

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            return httpx.get(url + "/healthz", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout, "the receiver to answer /healthz")


#: Every worker process started, so a test's leftovers (the RQ scheduler a
#: worker forks outlives a SIGKILLed worker) can be cleaned up after it.
STARTED: list[subprocess.Popen[bytes]] = []


def start_workers(
    app: str, environ: dict[str, str], *args: str, stderr: Any = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*CLI, "--log-level", "WARNING", "worker", app, *args],
        env=environ,
        cwd=ROOT,
        stderr=stderr,
        start_new_session=True,  # its own process group, scheduler child included
    )
    STARTED.append(process)
    return process


def kill_leftovers() -> None:
    """SIGKILL the process group of every worker started, and forget them."""
    while STARTED:
        process = STARTED.pop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if process.poll() is None:
        process.terminate()
    return process.wait(timeout=timeout)


def wait_registered(
    redis: Any, workers: list[subprocess.Popen[bytes]], timeout: float = 30
) -> None:
    """Wait until every worker process has registered with RQ (its signal handlers are set)."""

    def registered() -> bool:
        pids = set()
        for key in redis.scan_iter("rq:worker:*", _type="hash"):  # (rq 3 keeps sets there too)
            pid = redis.hget(key, "pid")
            if pid is not None:
                pids.add(int(pid))
        # `redo-hooks worker` is a parent: its children are the RQ workers.
        return all(children(w.pid) & pids for w in workers if w.poll() is None)

    wait_for(registered, timeout, "the workers to register with RQ")


def mypy_strict(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on one file, as a user's project would run it, from ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )
