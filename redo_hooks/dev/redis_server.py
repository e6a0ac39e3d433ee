"""A private ``redis-server`` process: for tests, and for ``redo-hooks dev``."""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from redis import Redis

from ..errors import RedoHooksError

INSTALL_HINT = (
    "redis-server is not installed: on Debian/Ubuntu run `sudo apt-get install "
    "redis-server` (scripts/setup does it), on macOS `brew install redis`; or point "
    "REDO_HOOKS_REDIS_URL at a Redis you already run"
)


class RedisServer:
    """A private ``redis-server`` process, started on a free loopback port.

    With ``replica_of``, it replicates that server, and :meth:`start` returns
    once it is in sync. ``options``: more ``redis-server`` arguments, e.g. a
    ``--tls-port`` beside the plain one (which :meth:`start` waits on).
    :meth:`stop` then :meth:`start` restarts it on the same port; :meth:`kill`
    crashes it. ::

        with RedisServer() as server:
            hooks = RedoHooks(redis_url=server.url, secrets=["s"])
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        binary: str | None = None,
        directory: str | None = None,
        password: str | None = None,
        replica_of: RedisServer | None = None,
        detached: bool = False,
        options: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary or shutil.which("redis-server") or ""
        if not self.binary:
            raise RedoHooksError(INSTALL_HINT)
        self.appendonly = appendonly
        self.password = password
        self.replica_of = replica_of
        self.options = options
        #: Out of the caller's process group (a terminal's Ctrl-C does not reach
        #: it: its owner stops it last), but ended when its owner dies (Linux).
        self.detached = detached
        # A given directory is the caller's: kept by close(). Else a temporary one.
        self._owns_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="redo-hooks-redis-")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0 (with the password, if one is set)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING (and, a replica, is in sync)."""
        replication = []
        if self.replica_of is not None:
            replication = ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed argv
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.dir,
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--maxmemory-policy", "noeviction",
                "--loglevel", "warning",
                *(["--requirepass", self.password] if self.password else []),
                *replication,
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=self.detached,
            preexec_fn=_end_with_parent if self.detached else None,  # noqa: PLW1509
        )  # fmt: skip
        client = Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)
        # A replica has a full sync to do as well.
        deadline = time.monotonic() + (10 if self.replica_of is None else 30)
        try:
            while (problem := self._not_ready(client)) is not None:
                if self.process.poll() is not None:
                    raise RedoHooksError("redis-server exited at start")
                if time.monotonic() > deadline:
                    raise RedoHooksError(f"redis-server did not start: {problem}")
                time.sleep(0.02)
        finally:
            client.close()
        return self

    def _not_ready(self, client: Redis) -> str | None:
        """Why the server cannot be used yet, or ``None`` once it can."""
        try:
            if self.replica_of is None:
                client.ping()
                return None
            if client.info("replication").get("master_link_status") == "up":
                return None
            return "the replica is not in sync"
        except Exception as exc:  # OSError, or redis' own ConnectionError
            return str(exc)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would end it (what it had not saved is lost)."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server (its data directory stays until :meth:`close`)."""
        self._end(signal.SIGTERM)

    def _end(self, signum: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        """Stop the server and delete its data (unless the directory was given)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _end_with_parent() -> None:
    """In the forked child: SIGTERM it when the process that started it dies (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1
