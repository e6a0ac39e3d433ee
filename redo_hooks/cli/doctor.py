"""``redo-hooks doctor APP``: one line per check, and an exit status for scripts."""

from __future__ import annotations

import hmac
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click
import orjson

from ..errors import RedoHooksError
from ..ops.doctor import Check
from ..redo_api.calls import DEFAULT_API_URL
from ..redo_api.client import API_SECRET_ENV, API_URL_ENV
from .common import fail, load_app

if TYPE_CHECKING:  # imported when used: `redo-hooks --help` stays quick
    from ..receiver.auth import SecretEntry
    from ..redo_api import RedoAPI
    from ..settings import Settings

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def check_redo(
    api: RedoAPI, stores: Iterable[str], url: str | None, secrets: list[SecretEntry]
) -> list[Check]:
    """Each store's subscription points at ``url`` with a secret the receiver accepts."""
    from ..redo_api.errors import RedoAPIError

    found = []
    for store in stores:
        name = f"Redo store {store}"
        try:
            hooks = api.list_webhooks(store)
        except RedoAPIError as exc:
            found.append(Check(name, "fail", f"the Redo API refused: {exc}"))
            continue
        if url is None:
            urls = ", ".join(sorted({h.callback.url for h in hooks})) or "none"
            found.append(Check(name, "warn", f"subscriptions point at {urls}; give --url to check"))
            continue
        here = [h for h in hooks if h.callback.url.rstrip("/") == url.rstrip("/")]
        if not here:
            found.append(Check(name, "fail", f"no subscription points at {url}"))
            continue
        for hook in here:
            token = hook.callback.token
            accepted = token is not None and _accepted(
                token.get_secret_value().encode(), store, secrets
            )
            found.append(
                Check(name, "ok", f"subscription {hook.id} points here with an accepted secret")
                if accepted
                else Check(
                    name,
                    "fail",
                    f"subscription {hook.id} sends a secret this receiver does not accept "
                    "(rotated on one side? `redo-hooks rotate-secret`)",
                )
            )
    return found


def _accepted(token: bytes, store: str, secrets: list[SecretEntry]) -> bool:
    return any(
        hmac.compare_digest(token, entry.token) for entry in secrets if entry.store in (None, store)
    )


def configured_secrets(settings: Settings) -> list[SecretEntry]:
    """The receiver's secrets, with their store labels."""
    from ..receiver.auth import parse_entry

    return [parse_entry(s.get_secret_value()) for s in settings.secrets]


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
    secrets = configured_secrets(settings)
    if api_secret:
        wanted = stores or tuple(sorted({e.store for e in secrets if e.store}))
        if not wanted:
            found.append(
                Check("Redo", "warn", "no store to check: give --store (or label secrets)")
            )
        with RedoAPI(api_secret, base_url=api_url) as api:
            found += check_redo(api, wanted, url, secrets)
    else:
        found.append(Check("Redo", "warn", f"not checked: {API_SECRET_ENV} is not set"))
    for check in found:
        if as_json:
            shown = {"name": check.name, "level": check.level, "detail": check.detail}
            click.echo(orjson.dumps(shown).decode())
        else:
            click.echo(f"{MARKS[check.level]}  {check.name}: {check.detail}")
    sys.exit(1 if any(c.level == "fail" for c in found) else 0)
