"""``redo-hooks subscribe``, ``subscriptions …`` and ``rotate-secret``: Redo's side.

These talk to Redo's API (``REDO_API_URL``, ``REDO_API_SECRET``), not to
Redis. A command that prints a receiver secret prints it once, on stdout, as
the settings line to deploy; everything else goes to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx2
import orjson

from ..errors import PROBLEM_BASE, RedoHooksError, Unauthorized, UnprocessableEvent
from ..receiver.auth import new_secret
from ..redo_api import API_SECRET_ENV, API_URL_ENV, DEFAULT_API_URL, RedoAPI, Webhook
from .envfile import merge_secret
from .tables import table as _table

PROBE_INTERVAL = 2.0


def secret_entry(token: str, store: str | None) -> str:
    """One ``REDO_HOOKS_SECRETS`` entry: ``store=token``, or the bare token."""
    return token if store is None else f"{store}={token}"


def _api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--api-secret",
        envvar=API_SECRET_ENV,
        show_envvar=True,
        help="Redo API secret with the webhooks_read/webhooks_write scopes.",
    )(command)
    return click.option(
        "--api-url",
        envvar=API_URL_ENV,
        show_envvar=True,
        default=DEFAULT_API_URL,
        show_default=True,
        help="Base URL of Redo's API.",
    )(command)


def _probe_options(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--probe-url``, ``--no-probe``, ``--wait`` and ``--yes``: checking the deployed secret."""

    def add(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--yes", is_flag=True, help="Do not stop to ask; check (and --wait) instead."
        )(command)
        command = click.option(
            "--wait",
            type=click.FloatRange(0),
            default=0,
            show_default=True,
            help="Seconds to keep checking for the deployed secret before giving up.",
        )(command)
        command = click.option(
            "--no-probe", is_flag=True, help="Skip the check; you vouch for the deploy."
        )(command)
        return click.option(
            "--probe-url",
            help=f"Where to check that the receiver accepts the secret, if not {default} "
            "(e.g. an internal address).",
        )(command)

    return add


def _client(api_url: str, api_secret: str | None) -> RedoAPI:
    if not api_secret:
        raise click.UsageError(f"no Redo API secret: set {API_SECRET_ENV} or pass --api-secret")
    return RedoAPI(api_secret, base_url=api_url)


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except RedoHooksError as error:
        click.echo(f"redo-hooks: {error}", err=True)
        sys.exit(1)


def _say(message: str) -> None:
    click.echo(message, err=True)


def _check_https(url: str) -> None:
    if not url.startswith("https://"):
        raise click.BadParameter("Redo delivers only to https:// URLs", param_hint="--url")


@click.command()
@click.option("--store", required=True, help="Redo store id (Redo's admin: Settings, or the API).")
@click.option("--url", required=True, help="Public https:// URL of your receiver.")
@click.option(
    "--external-id",
    help="Your id for this subscription; running again with it updates the subscription "
    "(its URL included) instead of adding a second one. Default: redo-hooks:<store>.",
)
@click.option("--secret", "token", help="Receiver secret to use. Default: a new strong one.")
@click.option("--backfill", is_flag=True, help="Also send backfill events for existing returns.")
@click.option(
    "--label/--no-label",
    default=True,
    show_default=True,
    help="Label the printed secret with the store id (store=secret).",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also add the secret to this dotenv file's REDO_HOOKS_SECRETS line (made if missing).",
)
@_probe_options("--url")
@_api_options
def subscribe(
    *,
    store: str,
    url: str,
    external_id: str | None,
    token: str | None,
    backfill: bool,
    label: bool,
    env_file: Path | None,
    probe_url: str | None,
    no_probe: bool,
    wait: float,
    yes: bool,
    api_url: str,
    api_secret: str | None,
) -> None:
    """Subscribe your receiver to a store's return events, once it accepts the secret.

    Prints the secret's REDO_HOOKS_SECRETS entry (stdout: store=secret) for
    you to add to the receiver's setting, comma-separated, and deploy. Then it
    checks that the receiver accepts that secret, and only then creates the
    subscription at Redo (or updates the one with the same external id), so
    that no event meets a 401. Warns before adding a second subscription for
    a store that has one.
    """
    _check_https(url)
    given = token is not None
    token = token or new_secret()
    external_id = external_id or f"redo-hooks:{store}"
    entry = secret_entry(token, store if label else None)
    target = probe_url or url

    def act() -> None:
        with _client(api_url, api_secret) as redo:
            _warn_of_a_second_subscription(redo.list_webhooks(store), store, external_id, yes)
            # A --secret may be deployed already; a new one cannot be.
            accepted = given and not no_probe and probe(target, token) is True
            if not accepted:
                _say("the receiver must accept this secret: add this entry to its")
                _say("REDO_HOOKS_SECRETS (comma-separated, beside any others) and deploy it:")
            click.echo(entry)
            if env_file is not None:
                entries = merge_secret(env_file, entry)
                _say(f"added to REDO_HOOKS_SECRETS in {env_file} ({len(entries)} entries)")
            if no_probe:
                _say("not checking the receiver (--no-probe)")
            elif not accepted:
                if not yes:
                    click.confirm("Deployed, with this secret accepted?", abort=True, err=True)
                if not _wait_for_receiver(target, token, wait):
                    _say(
                        f"redo-hooks: the receiver at {target} does not accept the secret "
                        "(or did not answer); nothing was created at Redo. Once it does, "
                        "run this again with --secret <the secret above>."
                    )
                    sys.exit(1)
            if not no_probe:
                _say(f"the receiver at {target} accepts the secret")
            written = redo.create_webhook(
                store, url, token=token, external_id=external_id, backfill=backfill
            )
        verb = "created" if written.created else "updated"
        _say(f"{verb} webhook {written.webhook.id} for store {store}: {url}")
        _say(f"external id: {external_id}; backfill: {'yes' if backfill else 'no'}")

    _run(act)


def _warn_of_a_second_subscription(
    hooks: list[Webhook], store: str, external_id: str, yes: bool
) -> None:
    """Say so (and ask) when subscribing would add to the store's existing subscriptions."""
    if not hooks or any(hook.external_id == external_id for hook in hooks):
        return
    _say(f"store {store} already has {len(hooks)} webhook subscription(s):")
    for hook in hooks:
        _say(f"  {hook.id}  {hook.callback.url}  (external id: {hook.external_id or '-'})")
    _say(
        "this adds another, and Redo sends every event to each. To change one's URL "
        "instead, run this again with --external-id <its external id>."
    )
    if not yes:
        click.confirm("Add a second subscription?", abort=True, err=True)


@click.group()
def subscriptions() -> None:
    """List, show, delete and replay Redo webhook subscriptions."""


@subscriptions.command("list")
@click.option("--store", required=True, help="Redo store id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_api_options
def list_command(store: str, as_json: bool, api_url: str, api_secret: str | None) -> None:
    """Every webhook subscription of a store."""

    def act() -> None:
        with _client(api_url, api_secret) as redo:
            hooks = redo.list_webhooks(store)
        if as_json:
            for hook in hooks:
                click.echo(orjson.dumps(hook.summary()).decode())
            return
        if not hooks:
            click.echo(f"no webhooks for store {store}")
            return
        # Whole ids: two subscriptions that differ only at the end must not look alike.
        rows = [(h.id, h.topic, h.external_id or "-", h.callback.url) for h in hooks]
        click.echo(_table(("id", "topic", "external id", "url"), rows))

    _run(act)


@subscriptions.command("show")
@click.argument("webhook_id")
@click.option("--json", "as_json", is_flag=True)
@_api_options
def show_command(webhook_id: str, as_json: bool, api_url: str, api_secret: str | None) -> None:
    """One webhook subscription (its secret only as whether one is set)."""

    def act() -> None:
        with _client(api_url, api_secret) as redo:
            hook = redo.get_webhook(webhook_id)
        _show(hook, as_json)

    _run(act)


def _show(hook: Webhook, as_json: bool) -> None:
    summary = hook.summary()
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        return
    for name, value in summary.items():
        click.echo(f"{name:11} {'-' if value is None else value}")


@subscriptions.command("delete")
@click.argument("webhook_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_api_options
def delete_command(webhook_id: str, yes: bool, api_url: str, api_secret: str | None) -> None:
    """Delete a webhook subscription: Redo stops sending its events."""
    if not yes:
        click.confirm(f"Delete webhook {webhook_id}? Redo stops sending its events", abort=True)

    def act() -> None:
        with _client(api_url, api_secret) as redo:
            redo.delete_webhook(webhook_id)
        _say(f"deleted webhook {webhook_id}")

    _run(act)


@subscriptions.command("replay")
@click.argument("webhook_id")
@click.option("--since", required=True, help="ISO 8601 time, or an age such as 2h or 3d.")
@_api_options
def replay_command(webhook_id: str, since: str, api_url: str, api_secret: str | None) -> None:
    """Ask Redo to send again every event of a webhook since a time.

    The receiver's dedupe drops events it already has (within dedupe_ttl).
    """
    from ..ops.replay import parse_time

    def act() -> None:
        start = datetime.fromtimestamp(parse_time(since), UTC)
        with _client(api_url, api_secret) as redo:
            redo.replay_webhook(webhook_id, start)
        _say(f"Redo accepted the replay of webhook {webhook_id} since {start.isoformat()}")

    _run(act)


def probe(url: str, token: str, timeout: float = 5.0) -> bool | None:
    """Does the redo-hooks receiver at ``url`` accept ``token``? ``None``: could not tell.

    Posts ``{}``: a redo-hooks receiver checks the bearer before the body, so
    an accepted secret gets its 422 ``invalid-event`` problem and a refused
    one its 401 ``unauthorized`` problem, and neither stores anything. Only
    those two answers of the receiver itself count: a 404 from a wrong path,
    a 405, or a 200 from a proxy in front of it tells nothing about the secret.
    """
    try:
        response = httpx2.post(
            url,
            content=b"{}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout,
        )
    except httpx2.HTTPError:
        return None
    problem = _receiver_problem(response)
    if problem == UnprocessableEvent.reason and response.status_code == UnprocessableEvent.status:
        return True
    if problem == Unauthorized.reason and response.status_code == Unauthorized.status:
        return False
    return None


def _receiver_problem(response: httpx2.Response) -> str | None:
    """The reason of a redo-hooks problem+json answer (``invalid_event``), else None."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    try:
        kind = response.json().get("type")
    except (ValueError, AttributeError):
        return None
    if not isinstance(kind, str) or not kind.startswith(PROBLEM_BASE):
        return None
    return kind[len(PROBLEM_BASE) :].replace("-", "_")


def _wait_for_receiver(url: str, token: str, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        accepted = probe(url, token)
        if accepted:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(PROBE_INTERVAL)


@click.command("rotate-secret")
@click.argument("webhook_id")
@click.option("--store", help="Store id, to label the secret (store=secret) as subscribe does.")
@click.option("--new-secret", "token", help="The new secret. Default: a new strong one.")
@_probe_options("the webhook's own URL")
@_api_options
def rotate_secret(
    webhook_id: str,
    *,
    store: str | None,
    token: str | None,
    probe_url: str | None,
    no_probe: bool,
    wait: float,
    yes: bool,
    api_url: str,
    api_secret: str | None,
) -> None:
    """Rotate a webhook's secret with no downtime, in three steps.

    1. You add the new secret to the receiver's accepted set and deploy.
    2. This command checks that the receiver accepts it, then switches the
       subscription at Redo to the new secret.
    3. You remove the old secret from the receiver and deploy.

    Redo never sends a secret the receiver refuses: the switch happens only
    once the new one is accepted, and the old one is dropped only after.
    """
    token = token or new_secret()
    entry = secret_entry(token, store)

    def act() -> None:
        with _client(api_url, api_secret) as redo:
            hook = redo.get_webhook(webhook_id)
            target = probe_url or hook.callback.url
            _say(f"webhook {hook.id} sends to {hook.callback.url}")
            _say("step 1 of 3: add this entry to the receiver's REDO_HOOKS_SECRETS, keeping")
            _say("the current one(s), comma-separated; then deploy the receiver:")
            click.echo(entry)
            if not yes:
                click.confirm("Deployed, with both secrets accepted?", abort=True, err=True)
            if no_probe:
                _say("step 2 of 3: not checking the receiver (--no-probe)")
            elif _wait_for_receiver(target, token, wait):
                _say(f"step 2 of 3: the receiver at {target} accepts the new secret")
            else:
                _say(
                    f"redo-hooks: the receiver at {target} does not accept the new secret "
                    "(or did not answer); nothing was changed at Redo"
                )
                sys.exit(1)
            redo.update_webhook(
                hook.id, hook.callback.url, token=token, external_id=hook.external_id
            )
            _say(f"switched: Redo now sends the new secret to webhook {hook.id}")
            _say("step 3 of 3: once events sent before the switch are delivered (Redo may")
            _say("still be retrying some with the old secret; a day is safe), set")
            _say("REDO_HOOKS_SECRETS to the new entry and the other stores' entries, without")
            _say("the old secret, and deploy the receiver.")

    _run(act)
