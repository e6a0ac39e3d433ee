"""``redo-hooks dev``, ``trigger`` and ``secret``: the local development loop."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx2
import orjson

from ..dev.runner import DATA_DIR
from ..errors import RedoHooksError
from ..receiver.auth import new_secret
from .common import STATUS, event_name

F = TypeVar("F", bound=Callable[..., Any])


def _data_dir_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--data-dir",
        default=DATA_DIR,
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=help,
    )


@click.command()
@click.argument("app")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@_data_dir_option("Project-local folder for the private Redis and the dev settings.")
def dev(app: str, host: str, port: int, data_dir: Path) -> None:
    """Run Redis, the receiver and a worker for APP, restarting them on code changes.

    With no REDO_HOOKS_REDIS_URL, a private redis-server keeps its data in
    DATA_DIR and stops on exit. With no REDO_HOOKS_SECRETS, a dev secret is
    made (and kept in DATA_DIR). Then: `redo-hooks trigger return.created`.
    """
    from .. import logs
    from ..dev.runner import run

    def say(message: str) -> None:
        click.secho(f"redo-hooks dev: {message}", fg="cyan", err=True)

    # One shape for every line in the terminal: console unless asked for JSON.
    group = click.get_current_context().find_root().params
    level = group.get("log_level", "INFO").upper()
    style = "json" if group.get("log_format") == "json" else "console"
    logs.configure(level, json=style == "json")
    try:
        code = run(
            app,
            host=host,
            port=port,
            data_dir=data_dir,
            environ=os.environ,
            say=say,
            log=(level, style),
        )
    except RedoHooksError as error:
        click.echo(f"redo-hooks dev: {error}", err=True)
        sys.exit(2)
    sys.exit(code)


@click.command()
@click.argument("event", default="return.created", callback=event_name)
@click.option("--url", help="Receiver URL. Default: the running `redo-hooks dev`'s, else :8000.")
@click.option(
    "--secret",
    help="Bearer secret. Default: the first of REDO_HOOKS_SECRETS, else `redo-hooks dev`'s.",
)
@click.option("--return", "return_id", help="Return id: continue an existing return's lifecycle.")
@click.option("--status", type=STATUS, help="return.status to set, e.g. complete.")
@_data_dir_option("Where `redo-hooks dev` left its URL and secret.")
def trigger(
    event: str,
    *,
    url: str | None,
    secret: str | None,
    return_id: str | None,
    status: str | None,
    data_dir: Path,
) -> None:
    """POST a realistic sample EVENT (return.created, .updated, .backfill) to a receiver.

    The event is the spec's example with a fresh return id (or --return) and
    current timestamps. Exit status 0 when the receiver acknowledged it.
    """
    from ..dev.runner import DevState, first_secret
    from ..testing import sample_event

    state = DevState.load(data_dir)
    url = url or (state.url if state else "http://127.0.0.1:8000/")
    secret = secret or first_secret(os.environ.get("REDO_HOOKS_SECRETS", ""))
    secret = secret or (state.secret if state else "")
    if not secret:
        raise click.UsageError(
            "no secret: pass --secret, set REDO_HOOKS_SECRETS, or run `redo-hooks dev` here"
        )
    body = sample_event(event, return_id=return_id, status=status)
    try:
        response = httpx2.post(
            url,
            content=orjson.dumps(body),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            timeout=10,
        )
    except httpx2.HTTPError as exc:
        click.echo(f"redo-hooks trigger: no answer from {url} ({type(exc).__name__})", err=True)
        sys.exit(1)
    summary = f"{event} for return {body['return']['id']}"
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.is_success:
        click.echo(
            f"{response.status_code} {answer.get('status', '')}: {summary} "
            f"(event {answer.get('event', '?')})"
        )
        return
    detail = answer.get("detail") or response.text[:200]
    click.echo(f"redo-hooks trigger: {response.status_code} for {summary}: {detail}", err=True)
    sys.exit(1)


@click.command()
def secret() -> None:
    """Print a new strong secret (256 random bits) for REDO_HOOKS_SECRETS."""
    click.echo(new_secret())
