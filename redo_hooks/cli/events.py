"""``redo-hooks events APP``: the run log in a terminal (the dashboard's search)."""

from __future__ import annotations

import click
import orjson

from ..errors import RedoHooksError
from ..store import runlog
from .common import event_option, fail, load_app
from .tables import local_time, table


@click.command()
@click.argument("app", envvar="APP")
@click.option("--return", "return_id", help="Only this return's events (its id).")
@click.option("--order", help="Only the events of this order: its number (#1001) or id.")
@event_option("Only events of this name: return.created, return.updated, return.backfill.")
@click.option("--outcome", type=click.Choice(runlog.SEARCHABLE), help="Some run has it.")
@click.option("--since", help="Received at or after: ISO 8601 or an age (2h, 7d).")
@click.option("--until", help="Received at or before: ISO 8601 or an age.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
def events(
    app: str,
    *,
    return_id: str | None,
    order: str | None,
    event_name: str | None = None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Stored events, newest first, and what each handler did with them."""
    from ..ops.admin import Admin
    from ..ops.events import EventFilter
    from ..ops.replay import parse_time

    try:
        hooks = load_app(app, operator=True)
        where = EventFilter(
            return_id=return_id,
            order=order,
            event_name=event_name,
            outcome=outcome,
            since=None if since is None else parse_time(since),
            until=None if until is None else parse_time(until),
        )
        with Admin(hooks) as admin:
            page = admin.events(where, limit=limit)
    except RedoHooksError as error:
        fail(error)
        return
    if as_json:
        for event in page.events:
            click.echo(orjson.dumps(event.to_dict()).decode())
        return
    if not page.events:
        click.echo("no stored event matches")
        return
    rows = [
        (
            local_time(e.received_at),
            e.name,
            e.return_id,
            e.order or "-",
            e.outcome,
            ", ".join(
                f"{r.handler} {r.outcome}" + (f" x{r.attempts}" if r.attempts > 1 else "")
                for r in e.runs
            )
            or "-",
            next((r.error for r in e.runs if r.error), ""),
        )
        for e in page.events
    ]
    headers = ("received", "event", "return", "order", "outcome", "runs", "last error")
    click.echo(table(headers, rows, widths=(None, None, 30, 20, None, 60, 60)))
    if page.cursor:
        click.echo(f"(the newest {len(page.events)}; --until or a filter for older ones)")
