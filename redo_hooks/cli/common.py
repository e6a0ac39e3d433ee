"""What every command needs: the user's app from its import string, and one-line errors."""

from __future__ import annotations

import os
import sys

import click

from ..errors import ConfigurationError, RedoHooksError
from ..hooks import RedoHooks
from .importer import import_from_string

#: Where a command records the (masked) Redis URL of the app it loaded.
REDIS_URL = "redo_hooks.redis_url_safe"


def load_app(app: str) -> RedoHooks:
    sys.path.insert(0, os.getcwd())
    hooks = import_from_string(app)
    if not isinstance(hooks, RedoHooks):
        raise ConfigurationError(
            f"{app!r} is a {type(hooks).__name__}, not a RedoHooks object "
            "(point at the object you decorate handlers on)"
        )
    context = click.get_current_context(silent=True)
    if context is not None:
        context.find_root().meta[REDIS_URL] = hooks.settings.redis_url_safe
    return hooks


def fail(error: RedoHooksError) -> None:
    click.echo(f"redo-hooks: {error}", err=True)
    sys.exit(2)
