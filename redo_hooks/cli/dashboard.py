"""``redo-hooks dashboard APP``: the web dashboard on its own port."""

from __future__ import annotations

import click

from ..errors import RedoHooksError
from .alive import announce, local_url
from .common import fail, load_app


@click.command()
@click.argument("app", envvar="APP")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option(
    "--no-token",
    is_flag=True,
    help="Development only: no login, every request from this machine is an admin. "
    "Refused unless --host is a loopback address.",
)
@click.option(
    "--forwarded-allow-ips",
    help="Behind a TLS proxy: the proxy's addresses (comma-separated, or '*'), whose "
    "X-Forwarded-Proto/For are trusted, so links stay https:// and the cookie Secure.",
)
@click.pass_context
def dashboard(
    ctx: click.Context,
    app: str,
    *,
    host: str,
    port: int,
    no_token: bool,
    forwarded_allow_ips: str | None,
) -> None:
    """Serve the dashboard of APP: events, runs, dead letters, replay.

    Tokens come from REDO_HOOKS_DASHBOARD_TOKEN (admin:label=token, or
    label=token for read-only); see docs/dashboard.md.
    """
    import uvicorn

    from ..dashboard.auth import is_loopback

    try:
        if no_token and not is_loopback(host):
            raise RedoHooksError(
                f"--no-token serves without a login: only on a loopback address, not {host!r}"
            )
        hooks = load_app(app, operator=True)
        asgi = hooks.dashboard(allow_loopback_without_token=no_token)
    except RedoHooksError as error:
        fail(error)
        return
    if no_token and hooks.settings.dashboard_token:
        click.echo("redo-hooks: --no-token ignored: tokens are configured", err=True)
    click.echo(f"redo-hooks: dashboard on http://{host}:{port}/", err=True)
    announce(ctx, local_url(host, port, "/login"))  # answers without a token
    uvicorn.run(
        asgi,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
    )
