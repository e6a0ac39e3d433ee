"""What every command needs: the user's app from its import string, and one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..dev.runner import DATA_DIR, STATE_FILE, DevState
from ..errors import ConfigurationError, RedoHooksError
from ..hooks import RedoHooks
from ..models import ReturnStatus, event_kind
from ..settings import ENV_PREFIX, PLATFORM_REDIS_ENV, Settings

#: Where a command records the (masked) Redis URL of the app it loaded, and
#: what to say of it if it does not answer (where it came from).
REDIS_URL = "redo_hooks.redis_url_safe"
REDIS_SOURCE = "redo_hooks.redis_source"

REDIS_ENV = f"{ENV_PREFIX}REDIS_URL"


def import_from_string(spec: str) -> Any:
    """Import ``module:attribute`` with uvicorn's importer; its errors say what to fix."""
    from uvicorn.importer import ImportFromStringError
    from uvicorn.importer import import_from_string as uvicorn_import

    try:
        return uvicorn_import(spec)
    except ImportFromStringError as error:
        hint = " (is its folder on PYTHONPATH?)" if "Could not import" in str(error) else ""
        example = " e.g. 'shop.hooks:hooks'" if "must be in format" in str(error) else ""
        raise ConfigurationError(f"{error}{hint}{example}") from None


def load_app(app: str, *, operator: bool = False) -> RedoHooks:
    """Import ``app`` (``module:attribute``) with the current directory on the path.

    ``operator``: a command that reads or changes what is in Redis (``status``,
    ``dead``, ``replay``). With no ``REDO_HOOKS_REDIS_URL``, it uses the private
    Redis of a ``redo-hooks dev`` run from this folder, and it says on stderr
    which Redis it talks to, and why that one.
    """
    sys.path.insert(0, os.getcwd())
    dev_url = _choose_redis() if operator else None
    try:
        hooks = import_from_string(app)
    finally:
        if dev_url is not None:  # the app read it while importing: leave no trace
            del os.environ[REDIS_ENV]
    if not isinstance(hooks, RedoHooks):
        raise ConfigurationError(
            f"{app!r} is a {type(hooks).__name__}, not a RedoHooks object "
            "(point at the object you decorate handlers on)"
        )
    settings = hooks.settings
    source = None
    if operator:
        from_dev = dev_url is not None and settings.redis_url == dev_url
        source = _describe_source(settings, from_dev)
        click.echo(f"redo-hooks: Redis {settings.redis_url_safe} ({source})", err=True)
        if from_dev:  # what to say if it does not answer
            source = "recorded by `redo-hooks dev`: is it running?"
    context = click.get_current_context(silent=True)
    if context is not None:
        meta = context.find_root().meta
        meta[REDIS_URL] = settings.redis_url_safe
        meta[REDIS_SOURCE] = source
    return hooks


def _choose_redis() -> str | None:
    """Point ``REDO_HOOKS_REDIS_URL`` at ``redo-hooks dev``'s Redis if nothing else is set.

    Returns the URL it set, or ``None``.
    """
    if os.environ.get(REDIS_ENV) or os.environ.get(PLATFORM_REDIS_ENV):
        return None
    state = DevState.load(Path(DATA_DIR))
    if state is None or state.redis_url is None:
        return None
    os.environ[REDIS_ENV] = state.redis_url
    return state.redis_url


def _describe_source(settings: Settings, from_dev: bool) -> str:
    if from_dev:
        return f"the private Redis of `redo-hooks dev`, from {DATA_DIR}/{STATE_FILE}"
    if os.environ.get(REDIS_ENV) and settings.redis_url == os.environ[REDIS_ENV]:
        return REDIS_ENV
    if os.environ.get(PLATFORM_REDIS_ENV) and settings.redis_url == os.environ[PLATFORM_REDIS_ENV]:
        return f"{PLATFORM_REDIS_ENV}, as {REDIS_ENV} is unset"
    default = Settings.model_fields["redis_url"].default
    if settings.redis_url == default:
        return f"the default: set {REDIS_ENV}, or run `redo-hooks dev` in this folder"
    return "the app's settings"


def event_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: an event name from the one vocabulary (``return.created``…)."""
    if value is None:
        return None
    try:
        event_kind(value)
    except ConfigurationError as error:
        raise click.BadParameter(str(error)) from None
    return value


def event_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--event NAME`` (into ``event_name``), with ``--type``, its deprecated 0.2 spelling."""

    def deprecated_type(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            click.echo("redo-hooks: --type is deprecated: use --event", err=True)
            ctx.params["event_name"] = event_name(ctx, param, value)

    def given(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        # Click runs this after ``--type``'s callback when only --type was given.
        return event_name(ctx, param, value) if value is not None else ctx.params.get(param.name)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--type", "event_type", callback=deprecated_type, hidden=True, expose_value=False
        )(command)
        return click.option("--event", "event_name", callback=given, help=help)(command)

    return decorate


#: ``--status``: the values of ``return.status`` Redo's schema lists.
STATUS = click.Choice([status.value for status in ReturnStatus])


def fail(error: RedoHooksError) -> None:
    click.echo(f"redo-hooks: {error}", err=True)
    sys.exit(2)


def set_up_tracing(settings: Settings, service: str, *, here: bool = True) -> None:
    """``REDO_HOOKS_OTEL``: refuse to start without what it needs; configure it ``here``
    (else the processes started later configure their own)."""
    from .. import tracing

    try:
        tracing.check(settings.otel)
    except tracing.TracingUnavailable as missing:
        fail(ConfigurationError(str(missing)))
    if here:
        tracing.setup(settings.otel, service)
