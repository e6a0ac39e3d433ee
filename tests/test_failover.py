"""Redis failover through Sentinel: 503 during the switch, 2xx after, nothing acknowledged lost.

A real primary, replica and three Sentinels on loopback; a receiver and two
worker processes on a ``redis+sentinel://`` URL, acknowledging only what a
replica confirmed (``min_replicas_ack=1``); a stream of events; the primary
SIGKILLed mid-stream and later restarted empty (the Sentinels make it a
replica of the new primary).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from redis.exceptions import RedisError

from redo_hooks.store.connections import redis_client
from redo_hooks.testing import sample_body, wait_for

from .conftest import SECRET
from .processes import env, start_server, start_workers, stop
from .sentinel_cluster import SentinelCluster

# Both kill processes and wait on recovery: they run one after the other
# (scripts/test distributes by group), not on top of each other.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chaos")]

APP = "tests.failover_app:hooks"
SUBJECTS = [f"ret-{n}" for n in range(10)]


def test_a_failover_loses_no_acknowledged_event(tmp_path: Path) -> None:
    with SentinelCluster() as cluster:
        environ = env(
            cluster.url,
            SECRET,
            REDO_HOOKS_MIN_REPLICAS_ACK="1",
            REDO_HOOKS_REDIS_TIMEOUT="1",
            REDO_HOOKS_HEARTBEAT_TTL="4",
            REDO_HOOKS_MAINTENANCE_INTERVAL="2",
            REDO_HOOKS_RETRIES="1000",
            REDO_HOOKS_BACKOFF="0.1",
            REDO_HOOKS_BACKOFF_CAP="1",
        )
        server, url = start_server(APP, environ)
        worker_log = tmp_path / "workers.log"
        log_file = worker_log.open("wb")
        workers = start_workers(APP, environ, "--concurrency", "2", stderr=log_file)
        acked: dict[str, list[int]] = {s: [] for s in SUBJECTS}
        statuses: list[int] = []
        seqs = itertools.count()
        client = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {SECRET}"})

        def send(n: int) -> int:
            """Post n events round the returns; the number acknowledged."""
            done = 0
            for _ in range(n):
                seq = next(seqs)
                subject = SUBJECTS[seq % len(SUBJECTS)]
                try:
                    status = client.post(
                        url + "/", content=sample_body(return_id=subject, seq=seq)
                    ).status_code
                except httpx.TransportError:
                    status = 0
                statuses.append(status)
                if 200 <= status < 300:
                    acked[subject].append(seq)
                    done += 1
            return done

        try:
            assert send(100) == 100, statuses
            old = cluster.kill_primary()
            before = len(statuses)
            deadline = time.monotonic() + 60
            while cluster.primary_port() in (old, None) or all(s < 500 for s in statuses[before:]):
                send(5)
                assert time.monotonic() < deadline, "no failover"
            cluster.restart(old)  # it comes back empty, as a replica of the new primary
            after = 0
            while after < 100:
                after += send(10)
                assert time.monotonic() < deadline + 60, "the receiver did not recover"
            switch = statuses[before:]
            assert any(s == 503 for s in switch), "no 503 during the switch"
            assert all(s in (200, 202, 503) for s in statuses), set(statuses)

            store = redis_client(cluster.url, socket_timeout=2)

            def recorded() -> dict[str, list[int]]:
                try:
                    return {
                        s: [int(x) for x in store.lrange(f"failover:{s}", 0, -1)] for s in SUBJECTS
                    }
                except RedisError:
                    return {}

            def all_processed() -> bool:
                seen = recorded()
                return bool(seen) and all(set(acked[s]) <= set(seen[s]) for s in SUBJECTS)

            try:
                wait_for(all_processed, 120, "every acknowledged event to be processed")
            except TimeoutError:
                tail = worker_log.read_text()[-6000:]
                raise AssertionError(f"not all processed; workers said:\n{tail}") from None
            for subject, seen in recorded().items():
                firsts = list(dict.fromkeys(seen))
                mine = [x for x in firsts if x in set(acked[subject])]
                assert mine == sorted(mine), f"{subject} out of order: {firsts}"
            assert workers.poll() is None, "the workers did not survive the failover"
            assert server.poll() is None
        finally:
            client.close()
            stop(server)
            stopped = stop(workers)
            log_file.close()
        # RQ's teardown once failed here ("Wrong number of response items").
        said = worker_log.read_text()
        assert stopped == 0, f"the workers exited {stopped}:\n{said[-3000:]}"
        assert "worker_stopped_without_teardown" not in said, said[-3000:]
