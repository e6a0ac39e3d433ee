"""``redo-hooks dev``: Redis, the receiver and a worker in one terminal, reloaded on change.

The development loop, like ``stripe listen``: one command, and
``redo-hooks trigger`` from another terminal. With no Redis configured it runs
a private ``redis-server`` whose data (AOF on) lives in the project's
``.redo-hooks/`` folder, and stops it on exit. The URL and secret it uses are
written to ``.redo-hooks/dev.json`` so that ``trigger`` finds them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2
import orjson
import watchfiles

from ..receiver.auth import first_token, new_secret
from ..settings import split_secrets
from .redis_server import RedisServer

DATA_DIR = ".redo-hooks"
STATE_FILE = "dev.json"


@dataclass(frozen=True, slots=True)
class DevState:
    """What a running ``redo-hooks dev`` tells ``redo-hooks trigger``."""

    url: str
    secret: str
    #: The private Redis of that session, for the operator commands (``status``,
    #: ``dead``, ``replay``) run in the same folder; ``None`` when it used
    #: ``REDO_HOOKS_REDIS_URL``.
    redis_url: str | None = None

    def save(self, data_dir: Path) -> None:
        """Write it (owner-only: it holds a secret) under ``data_dir``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / STATE_FILE
        state = {"url": self.url, "secret": self.secret, "redis_url": self.redis_url}
        # Created owner-only, so the secret is never readable by others.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(orjson.dumps(state))
        path.chmod(0o600)

    @classmethod
    def load(cls, data_dir: Path) -> DevState | None:
        """The saved state, if a dev session left one."""
        try:
            raw = orjson.loads((data_dir / STATE_FILE).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(raw, dict):
            return None
        url, secret, redis_url = raw.get("url"), raw.get("secret"), raw.get("redis_url")
        if isinstance(url, str) and isinstance(secret, str):
            return cls(url, secret, redis_url if isinstance(redis_url, str) else None)
        return None


def first_secret(setting: str) -> str:
    """The token of the first entry of a ``REDO_HOOKS_SECRETS`` value ('' if none)."""
    return first_token(split_secrets(setting))


def dev_secret(data_dir: Path) -> str:
    """The secret of earlier dev sessions in this project, or a new one."""
    state = DevState.load(data_dir)
    return state.secret if state else new_secret()


class Children:
    """The receiver and worker processes: started, stopped and restarted together."""

    def __init__(self, commands: Sequence[Sequence[str]], env: Mapping[str, str]) -> None:
        self.commands = [list(c) for c in commands]
        self.env = dict(env)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start every command (its output goes to this terminal)."""
        self.processes = [
            subprocess.Popen(command, env=self.env)  # noqa: S603 - our own argv
            for command in self.commands
        ]

    def wait_ready(self, url: str, timeout: float = 30.0) -> bool:
        """Wait until the receiver answers ``/healthz``; ``False`` if a child died or timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                return False
            try:
                if httpx2.get(url + "healthz", timeout=0.5).status_code == 200:
                    return True
            except httpx2.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM each (workers finish the handler in hand), then SIGKILL stragglers."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []


def run(
    app: str,
    *,
    host: str,
    port: int,
    data_dir: Path,
    environ: Mapping[str, str],
    say: Any,
    log: tuple[str, str] = ("INFO", "console"),
) -> int:
    """Run the dev loop until SIGINT/SIGTERM; return the exit code.

    ``log``: (level, ``console`` or ``json``) for the receiver and the worker,
    as for this process, so that every line in the terminal has one shape.
    """
    env = dict(environ)
    # "1 change detected": the restart message below says it, in our format.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    redis: RedisServer | None = None
    if not env.get("REDO_HOOKS_REDIS_URL"):
        redis_dir = data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        # Detached: Ctrl-C reaches the receiver and the worker, which finish
        # with Redis still up; it is stopped last, below.
        redis = RedisServer(
            appendonly=True, directory=str(redis_dir.resolve()), detached=True
        ).start()
        env["REDO_HOOKS_REDIS_URL"] = redis.url
        say(f"Redis: private, data in {redis_dir}/, at {redis.url}")
        say(f"`redo-hooks status {app}` and `dead`/`replay` run here use this Redis")
    else:
        say("Redis: REDO_HOOKS_REDIS_URL")
    private_url = redis.url if redis is not None else None
    secret = first_secret(env.get("REDO_HOOKS_SECRETS", ""))
    shown = "the first of REDO_HOOKS_SECRETS"
    if not secret:
        secret = shown = dev_secret(data_dir)
        env["REDO_HOOKS_SECRETS"] = secret
    # Every handler run and accepted event on the console, in development.
    env.setdefault("REDO_HOOKS_LOG_SUCCESSES", "true")
    url = f"http://{host}:{port}/"
    DevState(url, secret, private_url).save(data_dir)
    cli = [sys.executable, "-m", "redo_hooks.cli", "--log-level", log[0], "--log-format", log[1]]
    children = Children(
        [
            [*cli, "serve", app, "--host", host, "--port", str(port)],
            [*cli, "worker", app],
        ],
        env,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> None:
        children.start()
        if children.wait_ready(url):
            say(f"receiver ready on {url}   secret: {shown}")
        else:
            say("the receiver or the worker did not start (see above); fix the code and save")

    try:
        start()
        say("send a sample event from another terminal:  redo-hooks trigger return.created")
        say(f"watching {Path.cwd()} for code changes; Ctrl-C stops everything")
        ignore = [str(data_dir.resolve())]
        for changes in watchfiles.watch(
            Path.cwd(),
            watch_filter=watchfiles.PythonFilter(ignore_paths=ignore),
            stop_event=stop,
            raise_interrupt=False,
            rust_timeout=500,
            yield_on_timeout=False,
        ):
            changed = sorted({Path(path).name for _, path in changes})
            say(f"{', '.join(changed)} changed: restarting the receiver and the worker")
            children.stop()
            start()
    finally:
        say("stopping")
        children.stop()
        if redis is not None:
            redis.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
