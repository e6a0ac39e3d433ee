"""A real Redis primary, a replica and three Sentinels on loopback, for failover tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from redis import Redis
from redis.exceptions import RedisError

from redo_hooks.dev.redis_server import RedisServer, free_port
from redo_hooks.testing import wait_for

SERVICE = "mymaster"


class SentinelCluster:
    """Primary + replica + 3 Sentinels; :meth:`kill_primary` and :meth:`restart` the old one."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or "redis-server"
        self.dir = Path(tempfile.mkdtemp(prefix="redo-hooks-sentinel-"))
        primary = RedisServer()
        self.nodes = {server.port: server for server in (primary, RedisServer(replica_of=primary))}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{SERVICE}/0"

    def start(self) -> SentinelCluster:
        primary, _ = self.nodes.values()
        for node in self.nodes.values():
            node.start()  # the replica returns once in sync
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 3000\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [self.binary, str(conf), "--sentinel", "--loglevel", "warning"],
                    stdout=subprocess.DEVNULL,
                )
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
        self.nodes[port].kill()
        return port

    def restart(self, port: int) -> None:
        """Start a killed node again (empty), as a replica of the current primary.

        Not as the primary it was: an empty node that comes back as a primary
        before every Sentinel has seen the failover can be taken for the
        primary again, and the real primary resyncs from it, empty (Redis'
        "master with persistence off" hazard; seen here under CPU load).
        """
        primary = self.primary_port()
        assert primary is not None and primary != port
        wait_for(lambda: self._failover_done(primary), 30, "every Sentinel to agree")
        node = self.nodes[port]
        node.replica_of = self.nodes[primary]
        node.start()

    def _failover_done(self, primary: int) -> bool:
        """Every Sentinel names ``primary``, and it says it is a primary."""
        for port in self.sentinel_ports:
            with contextlib.suppress(RedisError, OSError):
                address = Redis(port=port, socket_timeout=1).execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                )
                if int(address[1]) == primary:
                    continue
            return False
        with contextlib.suppress(RedisError, OSError):
            role = Redis(port=primary, socket_timeout=1).info("replication").get("role")
            return bool(role == "master")
        return False

    def _sentinel_knows_replica(self, port: int) -> bool:
        with contextlib.suppress(RedisError, OSError):
            replicas = Redis(port=port, socket_timeout=1).execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "REPLICAS", SERVICE
            )
            return len(replicas) >= 1
        return False

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
        for process in self.sentinels:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.sentinels.clear()
        for node in self.nodes.values():
            node.close()
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
