"""``redo-hooks doctor APP``: one line per check, and an exit status for scripts."""

from __future__ import annotations

import sys

import click
import orjson

from ..errors import RedoHooksError
from ..redo_api import API_SECRET_ENV, API_URL_ENV, DEFAULT_API_URL
from .common import fail, load_app

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@click.argument("app", envvar="APP")
@click.option("--url", help="The receiver's public URL, as Redo's subscriptions should name it.")
@click.option(
    "--store",
    "stores",
    multiple=True,
    help="A Redo store id to check (repeatable). Default: the stores REDO_HOOKS_SECRETS labels.",
)
@click.option("--api-secret", envvar=API_SECRET_ENV, show_envvar=True, help="Redo API secret.")
@click.option("--api-url", envvar=API_URL_ENV, default=DEFAULT_API_URL, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
def doctor(
    app: str,
    *,
    url: str | None,
    stores: tuple[str, ...],
    api_secret: str | None,
    api_url: str,
    as_json: bool,
) -> None:
    """Check that APP can receive and run events: Redis, workers, flow, and Redo's side.

    Exit status 1 if a check fails (a warning does not). Redo's side is
    checked when REDO_API_SECRET is set: each store's subscription points at
    --url, with a secret this receiver accepts.
    """
    from ..ops import doctor as checks
    from ..redo_api import RedoAPI
    from ..store.connections import redis_client

    try:
        hooks = load_app(app, operator=True)
    except RedoHooksError as error:
        fail(error)
        return
    settings = hooks.settings
    connection = redis_client(settings.redis_url, socket_timeout=settings.redis_timeout)
    try:
        found = checks.check_redis(connection)
        if found[0].level != "fail":
            found += checks.check_workers(connection, settings, hooks.registry)
            found += checks.check_flow(connection, settings, hooks.registry)
    finally:
        connection.close()
    secrets = checks.configured_secrets(settings)
    if api_secret:
        wanted = stores or tuple(sorted({e.store for e in secrets if e.store}))
        if not wanted:
            found.append(
                checks.Check("Redo", "warn", "no store to check: give --store (or label secrets)")
            )
        with RedoAPI(api_secret, base_url=api_url) as api:
            found += checks.check_redo(api, wanted, url, secrets)
    else:
        found.append(checks.Check("Redo", "warn", f"not checked: {API_SECRET_ENV} is not set"))
    for check in found:
        if as_json:
            shown = {"name": check.name, "level": check.level, "detail": check.detail}
            click.echo(orjson.dumps(shown).decode())
        else:
            click.echo(f"{MARKS[check.level]}  {check.name}: {check.detail}")
    sys.exit(1 if any(c.level == "fail" for c in found) else 0)
