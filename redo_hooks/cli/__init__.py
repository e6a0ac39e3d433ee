"""The ``redo-hooks`` command: the composition root.

Builds settings and logging once, imports the user's ``RedoHooks`` object from
a ``module:attribute`` string, and hands both to the receiver or the workers.
Only this module calls ``sys.exit``.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import click
import orjson
from redis.exceptions import RedisError

from .. import logs
from ..errors import RedoHooksError
from .alive import ALIVE_FILE, announce, given_alive_file, local_url
from .common import REDIS_SOURCE, REDIS_URL, STATUS, event_name, fail, load_app, set_up_tracing

APP_HELP = "Import string of your RedoHooks object, e.g. 'shop.hooks:hooks'."


class _Commands(click.Group):
    """The command group: Redis that does not answer is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RedisError as error:
            where = ctx.meta.get(REDIS_URL, "the configured URL")
            source = ctx.meta.get(REDIS_SOURCE)
            source = f" ({source})" if source else ""
            click.echo(
                f"redo-hooks: Redis at {where}{source} did not answer: "
                f"{type(error).__name__}: {error}",
                err=True,
            )
            sys.exit(1)


@click.group(cls=_Commands)
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
@click.option(
    "--alive-file",
    type=click.Path(dir_okay=False),
    help="For a liveness probe (`redo-hooks alive FILE`): serve, run and dashboard write "
    "their local health URL here, a worker touches it every few seconds.",
)
@click.version_option(package_name="redo-hooks")
@click.pass_context
def main(ctx: click.Context, log_level: str, log_format: str, alive_file: str | None) -> None:
    """Receive Redo webhooks and run your handlers on them, in order per return."""
    logs.configure(log_level, json=None if log_format == "auto" else log_format == "json")
    ctx.meta[ALIVE_FILE] = alive_file


@main.command()
@click.argument("app", envvar="APP")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request may take to send its headers; then the connection is closed.",
)
@click.option(
    "--keep-alive",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--limit-concurrency",
    default=2048,
    show_default=True,
    type=click.IntRange(1),
    help="Most connections and tasks at once; beyond it new requests get 503.",
)
@click.option(
    "--graceful-shutdown",
    default=30,
    show_default=True,
    type=click.IntRange(0),
    help="Seconds in-flight requests may take to finish after SIGTERM.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Receiver processes sharing the port, each batching its own writes to Redis.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve GET /metrics on this port instead of beside the webhook (which is public).",
)
@click.option("--metrics-host", help="Address for --metrics-port. Default: --host.")
@click.pass_context
def serve(
    ctx: click.Context,
    app: str,
    *,
    host: str,
    port: int,
    header_timeout: float,
    keep_alive: int,
    limit_concurrency: int,
    graceful_shutdown: int,
    workers: int,
    metrics_port: int | None,
    metrics_host: str | None,
) -> None:
    """Run the receiver (HTTP). APP: import string of your RedoHooks object.

    The body of a request is bounded by REDO_HOOKS_BODY_TIMEOUT (408) and
    REDO_HOOKS_MAX_BODY_BYTES (413).
    """
    import uvicorn

    from ..receiver.server import ServerLimits

    if metrics_port is not None and workers > 1:
        raise click.UsageError(
            "--metrics-port serves one process's counters: use it with --workers 1 "
            "(or keep /metrics beside the webhook, REDO_HOOKS_METRICS_PATH)"
        )
    try:
        hooks = load_app(app)
        asgi = hooks.asgi(metrics=metrics_port is None)
        asgi.state.receiver.authenticator()  # refuse to start without a secret
    except RedoHooksError as error:
        fail(error)
        return
    set_up_tracing(hooks.settings, "redo-hooks-receiver", here=workers == 1)
    limits = ServerLimits(
        header_timeout=header_timeout,
        keep_alive=keep_alive,
        limit_concurrency=limit_concurrency,
        graceful_shutdown=graceful_shutdown,
    )
    announce(ctx, local_url(host, port, "/healthz"))
    if workers > 1:
        from .serving import run_processes

        group = ctx.parent.params if ctx.parent else {}
        log = (group.get("log_level", "INFO"), group.get("log_format", "auto"))
        run_processes(app, workers, host=host, port=port, limits=limits, log=log)
        return
    if metrics_port is not None:
        from .serving import serve_in_thread

        serve_in_thread(hooks.metrics_asgi(), metrics_host or host, metrics_port)
    # Everything imported so far lives as long as the process: keep it out of
    # the garbage collector's generations so collections stay cheap.
    gc.freeze()
    uvicorn.run(asgi, host=host, port=port, **limits.uvicorn_options())


@main.command()
@click.argument("app", envvar="APP")
@click.option("--burst", is_flag=True, help="Drain what is queued (retries included), then exit.")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes, under one parent that restarts them and keeps their jobs alive.",
)
@click.option(
    "--grace-period",
    type=click.FloatRange(0),
    help=(
        "Seconds a running handler may take to finish after SIGTERM; then it is "
        "interrupted and its event runs again later. Default: wait for it."
    ),
)
@click.option(
    "--alive-file",
    type=click.Path(dir_okay=False),
    help="A file touched every few seconds while the worker runs, for a liveness probe "
    "(`redo-hooks alive FILE`). Default: the --alive-file given before the command.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    app: str,
    *,
    burst: bool,
    concurrency: int,
    grace_period: float | None,
    alive_file: str | None,
) -> None:
    """Run workers that dispatch events to handlers. APP: as for serve."""
    from ..dispatch.supervisor import run
    from ..dispatch.worker import WorkerOptions

    try:
        hooks = load_app(app)
    except RedoHooksError as error:
        fail(error)
        return
    set_up_tracing(hooks.settings, "redo-hooks-worker", here=False)  # each process, its own
    options = WorkerOptions(
        burst=burst,
        concurrency=concurrency,
        grace_period=grace_period,
        alive_file=alive_file or given_alive_file(ctx),
    )
    sys.exit(run(hooks, options))


@main.command()
@click.argument("app", envvar="APP")
def routes(app: str) -> None:
    """Print the routing table of APP: which handler runs for which event, and how.

    retries and backoff are what the handler runs with: its own, or the settings'.
    """
    from .tables import table

    try:
        hooks = load_app(app)
    except RedoHooksError as error:
        fail(error)
        return
    if not len(hooks.registry):
        click.echo("no handlers")
        return
    settings = hooks.settings
    windows = {1.0: "s", 60.0: "m", 3600.0: "h"}
    rows = [
        (
            ", ".join(h.events),
            h.name,
            "async" if h.is_async else "sync",
            settings.retries if h.retries is None else h.retries,
            f"{settings.backoff if h.backoff is None else h.backoff:g} s",
            "yes" if h.latest_only else "no",
            "yes" if h.park else "no",
            "yes" if h.strict else "no",
            "-" if h.timeout is None else f"{h.timeout:g} s",
            h.max_concurrency or "-",
            "-" if h.rate is None else f"{h.rate[0]}/{windows.get(h.rate[1], '?')}",
        )
        for h in hooks.registry
    ]
    headers = (
        "events",
        "handler",
        "kind",
        "retries",
        "backoff",
        "latest_only",
        "park",
        "strict",
        "timeout",
        "max_concurrency",
        "rate_limit",
    )
    click.echo(table(headers, rows))


@main.command()
@click.argument("event", default="return.created", callback=event_name)
@click.option("--return", "return_id", help="Return id to use (continue a return's lifecycle).")
@click.option("--status", type=STATUS, help="return.status to set, e.g. complete.")
def sample(event: str, return_id: str | None, status: str | None) -> None:
    """Print a realistic sample EVENT (return.created, .updated, .backfill).

    The spec's example, with a fresh return id (or --return) and current times.
    """
    from ..testing import sample_body

    click.echo(sample_body(event, return_id=return_id, status=status).decode())


@main.command("check-spec")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per finding.")
def check_spec(path: Path, as_json: bool) -> None:
    """Compare the models with a Redo OpenAPI file (YAML or JSON), e.g. a newer release.

    Lists new, removed and retyped fields of the return webhook's body and new
    or removed enum values. Exit 1 when something would change what handlers
    see (anything but a new field), 0 otherwise. docs/observability.md has
    the upgrade path.
    """
    from ..errors import require
    from ..ops.spec_check import compare
    from .tables import table

    try:
        require("yaml", package="pyyaml", feature="check-spec", extra="spec")
    except RedoHooksError as error:
        fail(error)
        return
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
        findings = compare(document if isinstance(document, dict) else {})
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        click.echo(f"redo-hooks: cannot read {path}: {error}", err=True)
        sys.exit(2)
    except RedoHooksError as error:
        fail(error)
        return
    if as_json:
        for finding in findings:
            click.echo(
                orjson.dumps(
                    {
                        "kind": finding.kind,
                        "path": finding.path,
                        "detail": finding.detail,
                        "changes_handlers": finding.changes_handlers,
                    }
                ).decode()
            )
    elif not findings:
        click.echo(f"{path}: the models and the spec agree")
    else:
        rows = [(f.kind, f.path, f.detail or "-") for f in findings]
        click.echo(table(("change", "path", "detail"), rows))
        changing = sum(f.changes_handlers for f in findings)
        click.echo(f"\n{len(findings)} difference(s), {changing} that change what handlers see")
    if any(f.changes_handlers for f in findings):
        sys.exit(1)


def _register() -> None:
    from .alive import alive
    from .dashboard import dashboard
    from .dev import dev, secret, trigger
    from .doctor import doctor
    from .events import events
    from .issues import issues
    from .operators import dead, replay_command, status
    from .run import run_command
    from .subscriptions import rotate_secret, subscribe, subscriptions

    for command in (
        alive,
        dead,
        status,
        replay_command,
        dev,
        trigger,
        secret,
        subscribe,
        subscriptions,
        rotate_secret,
        dashboard,
        events,
        issues,
        doctor,
        run_command,
    ):
        main.add_command(command)


_register()
