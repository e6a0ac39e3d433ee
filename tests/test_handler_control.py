"""What a handler gets besides the event, and what it can ask for: Retry, GiveUp, timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import structlog
from redis import Redis

from redo_hooks import ConfigurationError, GiveUp, HandlerContext, Retry, ReturnEvent
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, drain, sample_body

from .conftest import MakeHooks


def dead_letters(redis: Redis) -> list[dict[str, Any]]:
    return [orjson.loads(record) for record in redis.hvals(Keys().dead)]


@pytest.mark.parametrize("is_async", [True, False])
def test_the_context_carries_attempt_key_name_and_binds_structlog_contextvars(
    make_hooks: MakeHooks, is_async: bool
) -> None:
    calls: list[tuple[HandlerContext, dict[str, Any]]] = []
    hooks = make_hooks(retries=3, backoff=0)

    def note(event: ReturnEvent, ctx: HandlerContext) -> None:
        calls.append((ctx, structlog.contextvars.get_contextvars()))
        assert ctx.event_key == event.key
        if ctx.attempt < 3:
            raise RuntimeError("not yet")

    async def async_handler(event: ReturnEvent, ctx: HandlerContext) -> None:
        note(event, ctx)

    hooks.add(async_handler if is_async else note, "return", name="with_context")
    assert deliver(hooks, sample_body(return_id="ret-c"))
    drain(hooks)
    assert [ctx.attempt for ctx, _ in calls] == [1, 2, 3]
    ctx, bound = calls[-1]
    assert (ctx.handler, ctx.return_id) == ("with_context", "ret-c")
    assert bound == {
        "handler": "with_context",
        "return_id": "ret-c",
        "event_key": ctx.event_key,
        "attempt": 3,
    }
    assert structlog.contextvars.get_contextvars() == {}  # unbound after the call


def test_retry_after_waits_that_long_and_counts_as_an_attempt(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    at: list[float] = []
    hooks = make_hooks(retries=1, backoff=0)

    @hooks.on("return", name="asks_later")
    def asks_later(event: ReturnEvent) -> None:
        at.append(time.monotonic())
        raise Retry(after=0.6, reason="the ERP said 429")

    assert deliver(hooks, sample_body(return_id="ret-r"))
    drain(hooks, raise_on_dead=False)
    assert len(at) == 2  # the first try and one retry, then dead-lettered
    assert at[1] - at[0] >= 0.6
    (letter,) = dead_letters(redis)
    assert letter["attempts"] == 2 and "the ERP said 429" in letter["error"]


def test_give_up_dead_letters_after_one_attempt(make_hooks: MakeHooks, redis: Redis) -> None:
    calls: list[int] = []
    hooks = make_hooks(retries=5, backoff=0)

    @hooks.on("return", name="gives_up")
    async def gives_up(event: ReturnEvent, ctx: HandlerContext) -> None:
        calls.append(ctx.attempt)
        raise GiveUp("the order was deleted")

    assert deliver(hooks, sample_body(return_id="ret-g"))
    drain(hooks, raise_on_dead=False)
    assert calls == [1]
    (letter,) = dead_letters(redis)
    assert letter["reason"] == "handler_gave_up" and letter["attempts"] == 1
    assert "the order was deleted" in letter["error"]


def test_a_timeout_fails_the_attempt_of_an_async_handler(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=0)

    @hooks.on("return", name="hangs", timeout=0.2)
    async def hangs(event: ReturnEvent) -> None:
        await asyncio.sleep(30)

    assert deliver(hooks, sample_body(return_id="ret-t"))
    started = time.monotonic()
    drain(hooks, raise_on_dead=False)
    assert time.monotonic() - started < 10  # not the handler's 30 s
    (letter,) = dead_letters(redis)
    assert "ran over its timeout of 0.2 s" in letter["error"]


def test_bad_timeouts_and_thread_shares_fail_at_registration(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    with pytest.raises(ConfigurationError, match="timeout must be seconds > 0"):
        hooks.on("return", name="zero", timeout=0)(lambda event: None)
    with pytest.raises(ConfigurationError, match="max_threads must be an int >= 1"):
        hooks.on("return", name="none", max_threads=0)(lambda event: None)

    async def on_the_loop(event: ReturnEvent) -> None: ...

    with pytest.raises(ConfigurationError, match="max_threads= is for sync handlers"):
        hooks.on("return", name="async", max_threads=2)(on_the_loop)
