"""The public surface is a contract."""

from __future__ import annotations

import redo_hooks
import redo_hooks.testing


def test_the_package_exports_exactly_the_public_names() -> None:
    assert set(redo_hooks.__all__) == {
        "EVENT_NAMES",
        "ConfigurationError",
        "EventKind",
        "Handler",
        "RedoHooks",
        "RedoHooksError",
        "ReturnEvent",
        "ReturnStatus",
        "Settings",
    }
    for name in redo_hooks.__all__:
        assert getattr(redo_hooks, name) is not None


def test_the_testing_helpers_are_exported() -> None:
    assert sorted(redo_hooks.testing.__all__) == [
        "DeadLettered",
        "RedisServer",
        "deliver",
        "drain",
        "env_without_redo_hooks",
        "sample_body",
        "sample_event",
        "wait_for",
    ]


def test_public_callables_have_docstrings() -> None:
    for name in redo_hooks.__all__:
        value = getattr(redo_hooks, name)
        if callable(value):
            assert value.__doc__, name
    for method in ("on", "add", "asgi", "handlers_for"):
        assert getattr(redo_hooks.RedoHooks, method).__doc__, method
