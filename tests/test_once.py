"""``ctx.once``: a side effect done at most once per event and handler once recorded,
through retries, replays and crashes at each point (``dispatch/once.py``)."""

from __future__ import annotations

import importlib
import signal

import pytest
from redis import Redis

from redo_hooks import ConfigurationError, HandlerContext, RedoHooks
from redo_hooks.admin import Admin, Selection
from redo_hooks.testing import deliver, drain, sample_event, wait_for

from . import once_app
from .conftest import SECRET, MakeHooks, as_bytes
from .processes import env, start_workers, stop

APP = "tests.once_app:hooks"


def effects(redis: Redis) -> list[bytes]:
    return [as_bytes(x) for x in redis.lrange("once:effects", 0, -1)]


@pytest.fixture
def app(make_hooks: MakeHooks, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> RedoHooks:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    importlib.reload(once_app)  # its handlers reach the test's Redis
    hooks = make_hooks(retries=2)
    hooks.add(once_app.refund_async, "return", name="once.async")
    return hooks


def test_a_retry_after_the_effect_does_not_repeat_it(app: RedoHooks, redis: Redis) -> None:
    redis.set("once:fail_after", 1)  # the handler fails after its once block, the first time
    assert deliver(app, sample_event("return.created", return_id="ret-1"))
    drain(app, retry_at_once=True)
    assert effects(redis) == [b"ret-1"] and redis.lrange("once:done", 0, -1) == [b"ret-1"]
    assert int(redis.get("once:calls") or 0) == 2  # it ran twice; the effect once


def test_an_exception_in_the_block_records_nothing_so_the_retry_does_it(
    app: RedoHooks, redis: Redis
) -> None:
    redis.set("once:fail_in_block", 1)
    assert deliver(app, sample_event("return.created", return_id="ret-1"))
    with pytest.raises(Exception, match="dead-lettered"):
        drain(app, retry_at_once=True)
    assert effects(redis) == [b"ret-1"] * 3  # each attempt tried it: none was recorded
    assert not list(redis.scan_iter("rh:once:*"))


def test_a_replay_does_not_repeat_a_recorded_effect_and_the_record_expires(
    app: RedoHooks, redis: Redis
) -> None:
    assert deliver(app, sample_event("return.created", return_id="ret-1"))
    drain(app)
    with Admin(app) as admin:
        assert admin.replay(Selection(return_id="ret-1")) == {"once.async": 1}
    drain(app)
    assert effects(redis) == [b"ret-1"] and len(redis.lrange("once:done", 0, -1)) == 2
    (record,) = list(redis.scan_iter("rh:once:*"))
    assert record.decode().startswith("rh:once:once.async:")
    assert 0 < redis.ttl(record) <= 7 * 86_400  # the retention: as long as a replay can come


def test_the_idempotency_key_is_the_same_on_every_run_and_a_bare_context_refuses() -> None:
    def ctx(attempt: int) -> HandlerContext:
        return HandlerContext("h", "ret-1", "k" * 32, attempt, log=None)

    assert ctx(1).idempotency_key("refund") == ctx(3).idempotency_key("refund")
    assert ctx(1).idempotency_key("refund") != ctx(1).idempotency_key("label")
    with pytest.raises(ConfigurationError, match="made by hand"):
        ctx(1).once("refund")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "effects_done"),
    [("before", 1), ("after_effect", 2), ("after_record", 1)],
    ids=["dies-before-the-effect", "dies-between-effect-and-record", "dies-after-the-record"],
)
def test_a_crash_at_each_point_is_recovered_as_documented(
    make_hooks: MakeHooks, redis_url: str, redis: Redis, point: str, effects_done: int
) -> None:
    """The documented window: only a death between the effect and its record repeats it."""
    hooks = make_hooks()
    hooks.add(once_app.refund, "return", name="once.refund")
    redis.set("once:crash", point)
    assert deliver(hooks, sample_event("return.created", return_id="ret-c"))
    environ = env(
        redis_url, SECRET, REDO_HOOKS_HEARTBEAT_TTL="2", REDO_HOOKS_MAINTENANCE_INTERVAL="1"
    )
    first = start_workers(APP, environ, "--burst")
    assert first.wait(timeout=60) == -signal.SIGKILL
    assert redis.get("once:died") == point.encode()
    survivor = start_workers(APP, environ)
    try:
        wait_for(lambda: redis.llen("once:done") == 1, 60, "the rescued event to finish")
    finally:
        assert stop(survivor) == 0
    assert effects(redis) == [b"ret-c"] * effects_done
