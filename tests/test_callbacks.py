"""Failure callbacks: called on a failed attempt, a dead letter and a park, never in the way."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sentry_sdk
import sentry_sdk.envelope
import sentry_sdk.transport
from structlog.testing import capture_logs

from redo_hooks import ConfigurationError, Failure, RedoHooks, ReturnEvent
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, drain, sample_event

from .conftest import MakeHooks


class Boom(RuntimeError):
    pass


def test_callbacks_see_each_failed_attempt_then_the_dead_letter(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=2)
    seen: list[Failure] = []

    @hooks.on("return.created", name="flaky")
    def flaky(event: ReturnEvent) -> None:
        raise Boom(f"no warehouse for {event.return_id}")

    @hooks.on_failure
    def record(failure: Failure) -> None:
        seen.append(failure)

    deliver(hooks, sample_event("return.created", return_id="ret-cb"))
    drain(hooks, raise_on_dead=False)
    assert [(f.kind, f.attempt) for f in seen] == [
        ("attempt_failed", 1),
        ("attempt_failed", 2),
        ("dead_lettered", 3),
    ]
    last = seen[-1]
    assert (last.handler, last.return_id) == ("flaky", "ret-cb")
    assert isinstance(last.error, Boom) and last.error_text == "Boom: no warehouse for ret-cb"
    assert last.event is not None and last.event.return_id == "ret-cb"
    assert last.dead_letter_id is not None and last.retry_in is None
    assert all(f.retry_in is not None for f in seen[:2])
    assert last.event_key == seen[0].event_key


def test_a_parked_lane_is_reported_as_parked(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=0)
    kinds: list[str] = []

    @hooks.on("return.created", name="held", park=True)
    def held(event: ReturnEvent) -> None:
        raise Boom("down")

    @hooks.on_failure
    async def record(failure: Failure) -> None:
        kinds.append(failure.kind)

    deliver(hooks, sample_event("return.created", return_id="ret-park"))
    drain(hooks, raise_on_dead=False)
    assert kinds == ["parked"]


def test_a_raising_or_slow_callback_neither_holds_the_lane_nor_changes_the_outcome(
    make_hooks: MakeHooks, redis: Any
) -> None:
    hooks = make_hooks(retries=0, failure_callback_timeout=1.0)
    release = threading.Event()
    started: list[float] = []
    done: list[str] = []

    @hooks.on("return", name="fails_first")
    def fails_first(event: ReturnEvent) -> None:
        if event.raw["seq"] == 0:
            raise Boom("first")
        # The next event ran while the blocking callback was still stuck.
        done.append(f"{event.return_id} released={release.is_set()}")

    @hooks.on_failure
    def raises(failure: Failure) -> None:
        raise ValueError("the pager is down")

    @hooks.on_failure
    def blocks(failure: Failure) -> None:
        started.append(time.monotonic())
        release.wait(30)  # far longer than the 1 s timeout

    @hooks.on_failure
    async def hangs(failure: Failure) -> None:
        await asyncio.sleep(30)

    deliver(hooks, sample_event("return.created", return_id="ret-slow", seq=0))
    deliver(hooks, sample_event("return.updated", return_id="ret-slow", seq=1))
    with capture_logs() as logs:
        try:
            drain(hooks, raise_on_dead=False)
        finally:
            release.set()
    assert done == ["ret-slow released=False"]
    assert len(started) == 1
    assert redis.zcard(Keys("rh").dead_ids) == 1  # the outcome stands
    # The drain waited for them only as long as their timeout: each is logged.
    outcomes = sorted(
        (e["event"], e["callback"].rsplit(".", 1)[-1]) for e in logs if "callback" in e
    )
    assert outcomes == [
        ("failure_callback_failed", "raises"),
        ("failure_callback_timed_out", "blocks"),
        ("failure_callback_timed_out", "hangs"),
    ]


def test_a_callback_must_take_the_failure() -> None:
    hooks = RedoHooks()
    with pytest.raises(ConfigurationError, match="must take one argument"):
        hooks.on_failure(lambda: None)


# Imported by name, as the examples are (examples/ is a folder, not a package).
sentry_recipe: Any = importlib.import_module("examples.observability.sentry")


class CapturingTransport(sentry_sdk.transport.Transport):
    """Sentry's transport, kept in memory: what would have been sent."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[sentry_sdk.envelope.Envelope] = []

    def capture_envelope(self, envelope: sentry_sdk.envelope.Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
def sentry() -> Iterator[CapturingTransport]:
    transport = CapturingTransport()
    sentry_sdk.init(
        dsn="https://public@sentry.example.com/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,  # its RQ integration would patch RQ for good
        data_collection={"stack_frame_variables": False},  # as the recipe says
    )
    yield transport
    sentry_sdk.get_client().close()
    # No DSN: disabled again. (A bare init() would set up the default and
    # auto-enabling integrations, whose RQ one patches RQ for the whole run.)
    sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)


def test_the_sentry_recipe_reports_the_dead_letter_with_tags_and_no_secret(
    make_hooks: MakeHooks, redis_url: str, sentry: CapturingTransport
) -> None:
    hooks = make_hooks(retries=1)
    secret = hooks.settings.secrets[0].get_secret_value()

    @hooks.on("return.created", name="sync_refund")
    def sync_refund(event: ReturnEvent) -> None:
        raise Boom("the books said no")

    sentry_recipe.install(hooks)
    deliver(hooks, sample_event("return.created", return_id="ret-sentry"))
    drain(hooks, raise_on_dead=False)
    sentry_sdk.flush()
    events: list[Any] = [
        item.payload.json
        for envelope in sentry.envelopes
        for item in envelope.items
        if item.type == "event"
    ]
    assert len(events) == 1  # the dead letter; the retried attempt is not reported
    [event] = events
    assert event["tags"] == {
        "handler": "sync_refund",
        "return_id": "ret-sentry",
        "attempt": "2",
        "outcome": "dead_lettered",
    }
    [exception] = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("Boom", "the books said no")
    frames = exception["stacktrace"]["frames"]
    assert frames and not any("vars" in frame for frame in frames)  # no customer data
    assert event["contexts"]["redo_hooks"]["event_type"] == "created"
    text = orjson.dumps(event).decode()
    for leak in (secret, redis_url):
        assert leak not in text
