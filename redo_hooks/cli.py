"""The ``redo-hooks`` command: the composition root.

Builds settings and logging once, imports the user's ``RedoHooks`` object from
a ``module:attribute`` string, and hands both to the receiver or the workers.
Only this module calls ``sys.exit``.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import click

from . import logs
from .errors import ConfigurationError, RedoHooksError
from .hooks import RedoHooks
from .importer import import_from_string

APP_HELP = "Import string of your RedoHooks object, e.g. 'shop.hooks:hooks'."


def _load(app: str) -> RedoHooks:
    sys.path.insert(0, os.getcwd())
    hooks = import_from_string(app)
    if not isinstance(hooks, RedoHooks):
        raise ConfigurationError(
            f"{app!r} is a {type(hooks).__name__}, not a RedoHooks object "
            "(point at the object you decorate handlers on)"
        )
    return hooks


def _fail(error: RedoHooksError) -> None:
    click.echo(f"redo-hooks: {error}", err=True)
    sys.exit(2)


@click.group()
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="auto: JSON unless stderr is a terminal.",
)
@click.version_option(package_name="redo-hooks")
def main(log_level: str, log_format: str) -> None:
    """Receive Redo webhooks and run your handlers on them, in order per return."""
    logs.configure(log_level, json=None if log_format == "auto" else log_format == "json")


@main.command()
@click.argument("app")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(app: str, host: str, port: int) -> None:
    """Run the receiver (HTTP). APP: import string of your RedoHooks object."""
    import uvicorn

    try:
        hooks = _load(app)
        asgi = hooks.asgi()
        asgi.state.receiver.verifier()  # refuse to start without a secret
    except RedoHooksError as error:
        _fail(error)
        return
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,  # keep our logging configuration
        "access_log": False,
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 30,
        "limit_concurrency": 2048,
        "server_header": False,
    }
    # Everything imported so far lives as long as the process: keep it out of
    # the garbage collector's generations so collections stay cheap.
    gc.freeze()
    uvicorn.run(asgi, **options)


@main.command()
@click.argument("app")
@click.option("--burst", is_flag=True, help="Drain what is queued (retries included), then exit.")
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(1), help="Processes."
)
def worker(app: str, burst: bool, concurrency: int) -> None:
    """Run workers that dispatch events to handlers. APP: as for serve."""
    from .worker import WorkerOptions, run

    try:
        hooks = _load(app)
    except RedoHooksError as error:
        _fail(error)
        return
    sys.exit(run(hooks, WorkerOptions(burst=burst, concurrency=concurrency)))


@main.command()
@click.argument("app")
def routes(app: str) -> None:
    """Print the routing table of APP: which handler runs for which event."""
    try:
        hooks = _load(app)
    except RedoHooksError as error:
        _fail(error)
        return
    click.echo(repr(hooks.registry))


@main.command()
@click.argument("type", default="created", type=click.Choice(["created", "updated", "backfill"]))
@click.option("--subject", help="Return id to use (continue a return's lifecycle).")
@click.option("--status", help="return.status to set, e.g. complete.")
def sample(type: str, subject: str | None, status: str | None) -> None:
    """Print a realistic sample event (the spec's example, fresh id and times)."""
    from .testing import sample_body

    click.echo(sample_body(type, subject=subject, status=status).decode())


if __name__ == "__main__":
    main()
