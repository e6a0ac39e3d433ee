"""``redo-hooks issues APP``: what is failing, grouped (the dashboard's ``/issues``)."""

from __future__ import annotations

import sys

import click
import orjson

from ..errors import RedoHooksError
from .common import fail, load_app
from .tables import local_time, table


@click.command()
@click.argument("app", envvar="APP")
@click.argument("fingerprint", required=False)
@click.option("--handler", help="Only this handler's issues.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per issue.")
def issues(
    app: str, fingerprint: str | None, *, handler: str | None, limit: int, as_json: bool
) -> None:
    """Dead letters grouped by handler and error, the most recently seen first.

    With FINGERPRINT, one issue: its sample traceback, returns and what waits
    behind its parked lanes. Act on a whole issue with
    `redo-hooks dead APP retry --issue FINGERPRINT` (or `drop`).
    """
    from ..ops.admin import Admin

    try:
        hooks = load_app(app, operator=True)
        with Admin(hooks) as admin:
            if fingerprint is not None:
                issue = admin.issue(fingerprint)
                found = [] if issue is None else [issue]
            else:
                found = admin.issues(handler=handler, limit=limit)
    except RedoHooksError as error:
        fail(error)
        return
    if fingerprint is not None and not found:
        click.echo(f"redo-hooks: no open issue {fingerprint}", err=True)
        sys.exit(1)
    if as_json:
        for issue in found:
            click.echo(orjson.dumps(issue.to_dict()).decode())
        return
    if not found:
        click.echo("no open issues: no dead letters")
        return
    if fingerprint is None:
        rows = [
            (
                i.fingerprint,
                i.handler,
                i.count,
                i.returns,
                i.parked or "-",
                local_time(i.first_seen),
                local_time(i.last_seen),
                i.title,
            )
            for i in found
        ]
        headers = ("issue", "handler", "letters", "returns", "parked", "first", "last", "error")
        click.echo(table(headers, rows, widths=(None, 30, None, None, None, None, None, 80)))
        return
    (issue,) = found
    fields = [
        ("issue", issue.fingerprint),
        ("handler", issue.handler),
        ("error", issue.title),
        ("open letters", issue.count),
        ("returns", issue.returns),
        ("parked lanes", issue.parked),
        ("events waiting behind them", issue.waiting_behind),
        ("seen since it opened", issue.seen),
        ("first seen", local_time(issue.first_seen)),
        ("last seen", local_time(issue.last_seen)),
        ("some returns", ", ".join(issue.some_returns) or "-"),
        ("sample letter", issue.sample_id),
    ]
    click.echo(table(("field", "value"), fields).split("\n", 1)[1])
    if issue.sample is not None and issue.sample.traceback:
        click.echo("\nsample traceback:")
        click.echo(issue.sample.traceback.rstrip())
