"""Handler registration and routing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from redo_hooks import EVENT_NAMES, ConfigurationError, RedoHooks, ReturnEvent
from redo_hooks.testing import sample_event


def created(event: ReturnEvent) -> None: ...


def updated(event: ReturnEvent) -> None: ...


async def every(event: ReturnEvent) -> None: ...


def test_decorators_route_by_event_type_in_registration_order() -> None:
    hooks = RedoHooks()
    hooks.on("return.created", "return.backfill")(created)
    hooks.on("return.updated")(updated)
    hooks.on("return")(every)
    # The registry routes by the body's type, new types included.
    names = {
        t: [h.func for h in hooks.registry.for_type(t)] for t in ("created", "updated", "new-kind")
    }
    assert names == {
        "created": [created, every],
        "updated": [updated, every],
        "new-kind": [every],
    }
    assert hooks.registry.get(f"{__name__}.every") is not None
    assert hooks.registry.get(f"{__name__}.every").is_async  # type: ignore[union-attr]


def test_return_matches_every_type_and_unmatched_types_have_no_handlers() -> None:
    hooks = RedoHooks()
    hooks.add(created, "return.created")
    assert hooks.handlers_for("return.updated") == []
    hooks.add(updated, "return")
    assert [h.func for h in hooks.handlers_for("return.updated")] == [updated]


def test_star_is_the_deprecated_spelling_of_return_and_warns_at_the_users_line() -> None:
    hooks = RedoHooks()
    with pytest.warns(DeprecationWarning, match='"\\*" is deprecated: use "return"') as caught:
        hooks.add(every, "*", name="audit")
    assert caught[0].filename == __file__  # the warning points at the caller
    with pytest.warns(DeprecationWarning) as decorated:

        @hooks.on("*", name="audit2")
        def audit2(event: ReturnEvent) -> None: ...

    assert decorated[0].filename == __file__
    assert [h.events for h in hooks.handlers_for("return.created")] == [("return",), ("return",)]


def test_repr_shows_the_routing_table() -> None:
    hooks = RedoHooks()
    hooks.add(created, "return.created")
    hooks.add(every, "return", name="audit")
    text = repr(hooks.registry)
    assert "return.created  ->  tests.test_registry.created (sync)" in text
    assert "return          ->  audit (async)" in text
    assert "audit" in repr(hooks)


def test_an_unknown_event_name_fails_at_decoration_listing_the_valid_ones() -> None:
    hooks = RedoHooks()
    with pytest.raises(ConfigurationError) as caught:
        hooks.on("return.create")(created)
    assert "return.create" in str(caught.value)
    for name in EVENT_NAMES:
        assert name in str(caught.value)
    assert len(hooks.registry) == 0


@pytest.mark.parametrize(
    "func",
    [
        lambda: None,
        lambda a, b, c: None,
        lambda *, event: None,
    ],
)
def test_a_function_that_cannot_take_the_event_fails_at_decoration(func: object) -> None:
    with pytest.raises(ConfigurationError, match="a handler takes the event, and optionally"):
        RedoHooks().add(func, "return")  # type: ignore[arg-type]


def test_no_events_duplicate_names_and_bad_retries_fail() -> None:
    hooks = RedoHooks()
    with pytest.raises(ConfigurationError, match="at least one event"):
        hooks.add(created)
    hooks.add(created, "return")
    with pytest.raises(ConfigurationError, match="already registered"):
        hooks.add(created, "return.updated")
    with pytest.raises(ConfigurationError, match="must match"):
        hooks.add(updated, "return", name="has space")
    with pytest.raises(ConfigurationError, match="retries"):
        hooks.add(updated, "return", retries=-1)
    assert len(hooks.registry) == 1


def test_creating_and_decorating_needs_no_network_and_no_secret() -> None:
    hooks = RedoHooks(redis_url="redis://203.0.113.1:1/0")  # unroutable: never contacted
    hooks.on("return")(created)
    assert hooks.settings.secrets == []


def test_an_unknown_handler_option_fails_at_decoration_listing_the_valid_ones() -> None:
    hooks = RedoHooks()
    options: dict[str, Any] = {"retry": 3}  # a typo of "retries"
    with pytest.raises(ConfigurationError) as caught:
        hooks.on("return.created", **options)(lambda event: None)
    message = str(caught.value)
    assert "retry" in message
    for valid in ("backoff", "latest_only", "name", "park", "retries"):
        assert valid in message
    assert len(hooks.registry) == 0


def test_the_decorator_returns_the_function_unchanged_with_its_type() -> None:
    hooks = RedoHooks()

    async def handler(event: ReturnEvent) -> None: ...

    on = hooks.on("return", name="h", retries=2, backoff=0.5, latest_only=True, park=True)
    decorated = on(handler)
    assert decorated is handler
    (registered,) = hooks.registry
    assert (registered.retries, registered.backoff, registered.latest_only, registered.park) == (
        2,
        0.5,
        True,
        True,
    )
    assert registered.is_async


def test_sample_events_and_handlers_for_take_the_names_handlers_subscribe_to() -> None:
    hooks = RedoHooks()
    hooks.on("return.created", name="on_created")(created)
    body = sample_event("return.created", return_id="r")
    assert body["type"] == "created"
    assert [h.name for h in hooks.handlers_for("return.created")] == ["on_created"]
    assert [h.name for h in hooks.registry.for_type(body["type"])] == ["on_created"]


@pytest.mark.parametrize(
    ("name", "hint"),
    [("created", "did you mean 'return.created'?"), ("return.banana", ""), ("", "")],
)
def test_an_unknown_event_name_is_refused_with_the_valid_ones(name: str, hint: str) -> None:
    """Before: sample_event("banana") made a body no handler but catch-alls received."""
    valid = "return.created, return.updated, return.backfill"
    for call in (sample_event, RedoHooks().handlers_for):
        with pytest.raises(ConfigurationError, match=re.escape(valid)) as raised:
            call(name)
        assert hint in str(raised.value)
