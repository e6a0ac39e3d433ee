"""A private ``redis-server`` process: for tests, and for ``redo-hooks dev``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

from redis import Redis

from .errors import RedoHooksError

INSTALL_HINT = (
    "redis-server is not installed: on Debian/Ubuntu run `sudo apt-get install "
    "redis-server` (scripts/setup does it), on macOS `brew install redis`; or point "
    "REDO_HOOKS_REDIS_URL at a Redis you already run"
)


class RedisServer:
    """A private ``redis-server`` process, started on a free loopback port.

    ::

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
    ) -> None:
        self.binary = binary or shutil.which("redis-server") or ""
        if not self.binary:
            raise RedoHooksError(INSTALL_HINT)
        self.appendonly = appendonly
        self.password = password
        # A given directory is the caller's: kept by close(). Else a temporary one.
        self._owns_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="redo-hooks-redis-")
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0 (with the password, if one is set)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
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
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except OSError:
                pass
            except Exception as exc:  # redis.ConnectionError is not an OSError
                if time.monotonic() > deadline:
                    raise RedoHooksError(f"redis-server did not start: {exc}") from exc
            if self.process.poll() is not None:
                raise RedoHooksError("redis-server exited at start")
            time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        """Stop the server (its data directory stays until :meth:`close`)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
