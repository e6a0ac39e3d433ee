"""The public surface is a contract."""

from __future__ import annotations

import importlib
import re
from importlib.metadata import version
from pathlib import Path

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
        "SettingsOverrides",
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


PUBLIC = (
    "redo_hooks",
    "redo_hooks.models",
    "redo_hooks.admin",
    "redo_hooks.testing",
    "redo_hooks.redo_api",
)


def test_each_public_module_exports_exactly_its_names_and_each_exists() -> None:
    import redo_hooks.admin  # noqa: PLC0415
    import redo_hooks.models  # noqa: PLC0415
    import redo_hooks.redo_api  # noqa: PLC0415

    assert sorted(redo_hooks.admin.__all__) == [
        "Activity",
        "Admin",
        "DeadFilter",
        "DeadLetter",
        "DeadPage",
        "EventDetail",
        "EventFilter",
        "EventPage",
        "HandlerSummary",
        "Issue",
        "Run",
        "Selection",
        "Status",
        "StoredEvent",
        "WorkerProcess",
    ]
    assert len(redo_hooks.models.__all__) == 39
    assert {"ReturnEvent", "Return", "Order", "EVENT_NAMES", "decode_event"} <= set(
        redo_hooks.models.__all__
    )
    for name in PUBLIC:
        module = importlib.import_module(name)
        exported = module.__all__
        assert len(exported) == len(set(exported)), name
        for attr in exported:
            assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_the_docs_and_examples_import_only_the_public_modules() -> None:
    root = Path(__file__).resolve().parent.parent
    sources = [*root.glob("docs/**/*.md"), root / "README.md", *root.glob("examples/**/*.py")]
    imports = re.compile(r"^\s*(?:from|import) (redo_hooks[\w.]*)", re.MULTILINE)
    private = sorted(
        f"{path.relative_to(root)}: {module}"
        for path in sources
        for module in imports.findall(path.read_text())
        if module not in PUBLIC
    )
    assert private == []
