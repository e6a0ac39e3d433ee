"""The public surface is a contract."""

from __future__ import annotations

from importlib.metadata import version

import redo_hooks
import redo_hooks.testing


def test_the_package_exports_exactly_the_public_names() -> None:
    assert set(redo_hooks.__all__) == {
        "EVENT_NAMES",
        "ConfigurationError",
        "EventKind",
        "Failure",
        "GiveUp",
        "Handler",
        "HandlerContext",
        "RedoHooks",
        "RedoHooksError",
        "ReturnEvent",
        "ReturnStatus",
        "Retry",
        "Settings",
        "__version__",
    }
    for name in redo_hooks.__all__:
        assert getattr(redo_hooks, name) is not None


def test_the_testing_helpers_are_exported() -> None:
    assert sorted(redo_hooks.testing.__all__) == [
        "DeadLettered",
        "HandlerFailed",
        "HookTester",
        "Ran",
        "RedisServer",
        "deliver",
        "drain",
        "sample_body",
        "sample_event",
    ]


def test_public_callables_have_docstrings() -> None:
    for name in redo_hooks.__all__:
        value = getattr(redo_hooks, name)
        if callable(value):
            assert value.__doc__, name
    for method in ("on", "add", "asgi", "handlers_for"):
        assert getattr(redo_hooks.RedoHooks, method).__doc__, method


def test_the_redo_api_client_is_exported_and_documented() -> None:
    import redo_hooks.redo_api as api  # noqa: PLC0415

    for name in ("RedoAPI", "AsyncRedoAPI", "RedoAPIError", "Webhook", "RetryPolicy"):
        assert name in api.__all__
    for method in (
        "list_webhooks",
        "create_webhook",
        "get_webhook",
        "update_webhook",
        "delete_webhook",
        "replay_webhook",
        "from_env",
    ):
        assert getattr(api.RedoAPI, method).__doc__, method
        assert getattr(api.AsyncRedoAPI, method).__doc__, method
    for name in ("HookTester", "sample_event", "deliver", "drain"):
        assert getattr(redo_hooks.testing, name).__doc__, name


def test_the_version_is_the_installed_distributions() -> None:
    assert redo_hooks.__version__ == version("redo-hooks")
