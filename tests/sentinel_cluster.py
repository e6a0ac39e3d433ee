"""A real Redis primary, a replica and three Sentinels on loopback, for failover tests."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from redis import Redis
from redis.exceptions import RedisError

from redo_hooks.testing import wait_for

from .processes import free_port

SERVICE = "mymaster"


class SentinelCluster:
    """Primary + replica + 3 Sentinels; :meth:`kill_primary` and :meth:`restart` the old one."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or "redis-server"
        self.dir = Path(tempfile.mkdtemp(prefix="redo-hooks-sentinel-"))
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{SERVICE}/0"

    def _data_node(self, port: int, replica_of: int | None = None) -> None:
        args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning",
                "--dbfilename", f"dump-{port}.rdb", "--maxmemory-policy", "noeviction"]  # fmt: skip
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.processes[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_for(lambda: _answers(port), 10, f"redis on {port}")

    def start(self) -> SentinelCluster:
        primary, replica = self.data_ports
        self._data_node(primary)
        self._data_node(replica, replica_of=primary)
        wait_for(lambda: self._synced(replica), 20, "the replica to sync")
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
            )
            self.processes[port] = subprocess.Popen(
                [self.binary, str(conf), "--sentinel", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL,
            )
        for port in self.sentinel_ports:
            wait_for(lambda p=port: self._sentinel_knows_replica(p), 20, "the sentinels")  # type: ignore[misc]
        return self

    def primary_port(self) -> int | None:
        """The primary's port, as the first Sentinel that answers says."""
        for port in self.sentinel_ports:
            with contextlib.suppress(RedisError, OSError):
                address = Redis(port=port, socket_timeout=1).execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                )
                return int(address[1])
        return None

    def kill_primary(self) -> int:
        port = self.primary_port()
        assert port is not None
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return port

    def restart(self, port: int) -> None:
        """Start a killed node again (empty); the Sentinels make it a replica."""
        self._data_node(port)

    def _synced(self, port: int) -> bool:
        with contextlib.suppress(RedisError, OSError):
            info = Redis(port=port, socket_timeout=1).info("replication")
            return bool(info.get("master_link_status") == "up")
        return False

    def _sentinel_knows_replica(self, port: int) -> bool:
        with contextlib.suppress(RedisError, OSError):
            replicas = Redis(port=port, socket_timeout=1).execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "REPLICAS", SERVICE
            )
            return len(replicas) >= 1
        return False

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(port: int) -> bool:
    try:
        return bool(Redis(port=port, socket_timeout=0.5).ping())
    except (RedisError, OSError):
        return False
