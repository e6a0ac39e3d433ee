"""A handler that kills its process is charged alone: crash quarantine, with real processes.

One return's events SIGKILL the worker process running them, every time,
while other returns keep arriving (``tests/poison_app.py``). The lanes a
dead process held are charged the crash and run one at a time in the
quarantine process, so the culprit is known; innocent events run at most
twice (once cut short by the crash) and are never dead-lettered.
"""

from __future__ import annotations

import orjson
import pytest
from redis import Redis

from redo_hooks import RedoHooks
from redo_hooks.ops.status import snapshot
from redo_hooks.testing import deliver, sample_body, wait_for

from . import poison_app
from .conftest import SECRET, as_bytes
from .processes import env, start_workers, stop

pytestmark = pytest.mark.slow

WAVES, PER_WAVE, EVENTS = 3, 20, 3


def now(redis: Redis) -> float:
    seconds, micros = redis.time()
    return float(seconds) + micros / 1e6


def test_a_poison_event_is_dead_lettered_alone_and_innocent_events_run_in_time(
    redis_url: str, redis: Redis
) -> None:
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    hooks.add(poison_app.handle, "return", name="poison.h")
    worker = start_workers("tests.poison_app:hooks", env(redis_url, SECRET), "--concurrency", "2")
    acked: dict[str, float] = {}
    try:
        began = now(redis)
        for seq in range(2):
            assert deliver(hooks, sample_body(return_id="poison-1", seq=seq))
        for wave in range(WAVES):
            for r in range(PER_WAVE):
                for seq in range(EVENTS):
                    subject = f"ok-{wave}-{r}"
                    assert deliver(hooks, sample_body(return_id=subject, seq=seq))
                    acked[f"{subject}:{seq}"] = now(redis)
            if wave < WAVES - 1:  # the next wave while this one runs (and crashes go on)
                half_posted = len(acked) // 2

                def half_ran(half: int = half_posted) -> bool:
                    return bool(redis.scard("poison:done") >= half)

                wait_for(half_ran, 30, "half of what was posted to run")
        wait_for(lambda: redis.scard("poison:done") == len(acked), 90, "every innocent event")
        wait_for(lambda: redis.hlen("rh:dead") == 2, 120, "both poisoned events dead-lettered")
        dead_by = now(redis)
    finally:
        assert stop(worker, timeout=60) == 0
    letters = [orjson.loads(v) for v in redis.hvals("rh:dead")]
    assert sorted(d["subject"] for d in letters) == ["poison-1", "poison-1"]
    for letter in letters:
        assert letter["reason"] == "process_crashed"
        assert letter["attempts"] == 3
        assert "killed by signal 9" in letter["error"]
    assert dead_by - began < 120
    runs = {as_bytes(k).decode(): int(v) for k, v in redis.hgetall("poison:runs").items()}
    first = {as_bytes(k).decode(): float(v) for k, v in redis.hgetall("poison:first_run").items()}
    print(
        f"poisoned runs: {runs.get('poison-1:0')}, {runs.get('poison-1:1')}; dead after "
        f"{dead_by - began:.1f} s; innocent runs > 1: "
        f"{sum(1 for k, v in runs.items() if v > 1 and not k.startswith('poison'))}"
    )
    innocent_runs = {k: v for k, v in runs.items() if not k.startswith("poison")}
    assert set(innocent_runs) == set(acked)
    assert max(innocent_runs.values()) <= 2, sorted(innocent_runs.items(), key=lambda i: -i[1])[:5]
    late = {k: first[k] - acked[k] for k in acked if first[k] - acked[k] > 30}
    assert late == {}


def test_status_counts_a_crashing_lane_as_quarantined_until_it_is_dead_lettered(
    redis_url: str, redis: Redis
) -> None:
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    hooks.add(poison_app.handle, "return", name="poison.h")
    worker = start_workers("tests.poison_app:hooks", env(redis_url, SECRET))
    seen: list[int] = []

    def quarantined() -> bool:
        seen.append(snapshot(redis, hooks.settings, hooks.registry).quarantined_lanes)
        return seen[-1] >= 1

    try:
        assert deliver(hooks, sample_body(return_id="poison-q", seq=0))
        wait_for(quarantined, 60, "status to show the crashing lane in quarantine")
        wait_for(lambda: redis.hlen("rh:dead") == 1, 120, "the poisoned event dead-lettered")
        # (The job that held it ends once the quarantine process finds its lane done.)
        wait_for(lambda: not quarantined(), 60, "the quarantine to be empty")
        status = snapshot(redis, hooks.settings, hooks.registry)
    finally:
        assert stop(worker, timeout=60) == 0
    assert (status.quarantined_lanes, status.dead_letters, status.events_waiting) == (0, 1, 0)
