"""The operators' commands: ``dead``, ``status`` and ``replay``.

Each reads the app's settings and handlers from its import string, and
Redis; none needs the app's secrets.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import orjson

from ..errors import RedoHooksError
from .common import event_option, fail, load_app
from .tables import local_time, table

if TYPE_CHECKING:  # imported when used: `redo-hooks --help` stays quick
    from ..ops.admin import Admin


@click.group()
@click.argument("app")
@click.pass_context
def dead(ctx: click.Context, app: str) -> None:
    """Dead letters of APP: events a handler gave up on. See `dead APP list`."""

    try:
        hooks = load_app(app, operator=True)
    except RedoHooksError as error:
        fail(error)
        return
    from ..ops.admin import Admin

    admin = Admin(hooks)
    ctx.call_on_close(admin.close)
    ctx.obj = admin


def _admin() -> Admin:
    admin: Admin = click.get_current_context().obj
    return admin


@dead.command("list")
@click.option("--handler", help="Only this handler's.")
@click.option("--return", "return_id", help="Only this return's (its id).")
@click.option("--older-than", help="Only those dead for at least this long, e.g. 2h or 7d.")
@click.option("--issue", help="Only this issue's (its fingerprint: `redo-hooks issues APP`).")
@click.option("--limit", type=click.IntRange(1), help="At most this many (the newest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead_list(
    *,
    handler: str | None,
    return_id: str | None,
    older_than: str | None,
    issue: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List dead letters, newest first (as the dashboard does)."""
    from ..ops.admin import DeadFilter

    where = DeadFilter(handler=handler, return_id=return_id, before=_age(older_than), issue=issue)
    letters = _admin().dead_list(where, limit)
    if as_json:
        for letter in letters:
            click.echo(orjson.dumps(letter.to_dict()).decode())
        return
    if not letters:
        click.echo("no dead letters")
        return
    rows = [
        (d.id, local_time(d.dead_at), d.handler, d.return_id, d.attempts, d.error) for d in letters
    ]
    headers = ("id", "dead at", "handler", "return", "tries", "error")
    click.echo(table(headers, rows, widths=(None, None, 40, 30, None, 80)))


@dead.command("show")
@click.argument("dead_id")
@click.option("--json", "as_json", is_flag=True)
def dead_show(dead_id: str, as_json: bool) -> None:
    """Show one dead letter, traceback included."""
    letter = _admin().dead_letter(dead_id)
    if letter is None:
        click.echo(f"redo-hooks: no dead letter {dead_id}", err=True)
        sys.exit(1)
    event = _admin().dead_event(letter)
    if as_json:
        shown = letter.to_dict()
        shown["event"] = None if event is None else orjson.loads(event.body)
        click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return
    body = None if event is None else orjson.loads(event.body)
    order = body.get("order") if isinstance(body, dict) else None
    fields = [
        ("id", letter.id),
        ("handler", letter.handler),
        ("return", letter.return_id),
        ("event", "-" if event is None else f"{event.name} ({letter.event_key})"),
        ("order", _order_number(order)),
        ("store", "-" if event is None else event.store or "-"),
        ("dead at", local_time(letter.dead_at)),
        ("attempts", letter.attempts),
        ("reason", letter.reason + (" (its lane is parked on it)" if letter.parked else "")),
        ("first error", letter.first_error or "-"),
        ("last error", letter.error or "-"),
    ]
    click.echo(table(("field", "value"), fields).split("\n", 1)[1])
    if letter.traceback:
        click.echo("\ntraceback:")
        click.echo(letter.traceback.rstrip())
    click.echo("\nevent body:")
    if body is None:
        click.echo("(expired from Redis after the retention time)")
    else:
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def _order_number(order: object) -> str:
    """The order's human name (``#1001``) and id, from the event body's ``order``."""
    if not isinstance(order, dict):
        return "-"
    name, ident = order.get("name"), order.get("id")
    if name and ident:
        return f"{name} ({ident})"
    return str(name or ident or "-")


def _age(older_than: str | None) -> float | None:
    from ..ops.replay import parse_time

    if older_than is None:
        return None
    try:
        return parse_time(older_than)
    except RedoHooksError as error:
        raise click.UsageError(str(error)) from None


def _select(ids: tuple[str, ...], every: bool, where: dict[str, str | None]) -> Any:
    from ..ops.admin import DeadFilter

    admin = _admin()
    filtered = any(where.values())
    if ids and (every or filtered):
        raise click.UsageError(
            "give ids, or --all/--handler/--return/--older-than/--issue, not both"
        )
    if ids:
        found = [admin.dead_letter(i) for i in ids]
        missing = [i for i, d in zip(ids, found, strict=True) if d is None]
        if missing:
            raise click.UsageError(f"no dead letter {', '.join(missing)}")
        return found
    if not (every or filtered):
        raise click.UsageError(
            "give dead-letter ids, or --all, --handler, --return, --older-than or --issue"
        )
    # Acted on oldest first: retried letters of a return join its lane in order.
    return admin.dead_list(
        DeadFilter(
            handler=where["handler"],
            return_id=where["return_id"],
            before=_age(where["older"]),
            issue=where["issue"],
        )
    )[::-1]


def _confirm(question: str) -> None:
    """Ask on stderr; exit 1 unless answered yes (also when stdin has no answer)."""
    if not click.confirm(question, err=True):
        click.echo("redo-hooks: nothing changed", err=True)
        sys.exit(1)


def _act(
    letters: Any, action: Callable[[Any], bool], verb: str, summary: str, as_json: bool
) -> None:
    """Apply ``action`` to each dead letter and say what changed."""
    done: list[str] = []
    for letter in letters:
        try:
            if action(letter):
                done.append(letter.id)
                if not as_json:
                    click.echo(f"{verb} {letter.id}: {letter.handler} on return {letter.return_id}")
        except RedoHooksError as error:
            click.echo(f"redo-hooks: {error}", err=True)
    if as_json:
        click.echo(orjson.dumps({verb: done}).decode())
    else:
        click.echo(f"{len(done)} dead letter(s) {summary}")


def _selection_options(command: Any) -> Any:
    command = click.option(
        "--json", "as_json", is_flag=True, help="The ids changed, as one JSON object."
    )(command)
    command = click.option(
        "--yes", is_flag=True, help="Do not ask before acting on a selection by filter."
    )(command)
    command = click.argument("ids", nargs=-1)(command)
    command = click.option("--all", "every", is_flag=True, help="Every dead letter.")(command)
    command = click.option("--handler", help="Every dead letter of this handler.")(command)
    command = click.option(
        "--older-than", "older", help="Every dead letter dead for at least this long (2h, 7d)."
    )(command)
    command = click.option(
        "--issue", help="Every dead letter of this issue (`redo-hooks issues APP`)."
    )(command)
    return click.option("--return", "return_id", help="Every dead letter of this return.")(command)


@dead.command("retry")
@_selection_options
def dead_retry(
    ids: tuple[str, ...],
    *,
    every: bool,
    handler: str | None,
    return_id: str | None,
    older: str | None,
    issue: str | None,
    as_json: bool,
    yes: bool,
) -> None:
    """Route dead-lettered events to their handler again, at the end of their lane.

    A parked lane runs its held event again, first. --all asks first (--yes: not).
    """
    where = {"handler": handler, "return_id": return_id, "older": older, "issue": issue}
    letters = _select(ids, every, where)
    if every and letters and not yes:
        _confirm(f"Retry all {len(letters)} dead letter(s)?")
    _act(letters, lambda d: _admin().retry_dead([d.id]) == 1, "retried", "queued again", as_json)


@dead.command("drop")
@_selection_options
def dead_drop(
    ids: tuple[str, ...],
    *,
    every: bool,
    handler: str | None,
    return_id: str | None,
    older: str | None,
    issue: str | None,
    as_json: bool,
    yes: bool,
) -> None:
    """Forget dead letters; their events expire after the retention time.

    A parked lane skips its held event and moves on. A selection by filter
    (--all, --handler, --return, --older-than, --issue) asks first (--yes: not).
    """
    where = {"handler": handler, "return_id": return_id, "older": older, "issue": issue}
    letters = _select(ids, every, where)
    if not ids and letters and not yes:
        _confirm(f"Drop {len(letters)} dead letter(s) for good?")
    _act(letters, lambda d: _admin().drop_dead([d.id]) == 1, "dropped", "dropped", as_json)


@click.command()
@click.argument("app", envvar="APP")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(app: str, as_json: bool) -> None:
    """What is queued, running, retrying, dead or parked, and the oldest wait."""
    from ..ops.admin import Admin

    try:
        hooks = load_app(app, operator=True)
    except RedoHooksError as error:
        fail(error)
        return
    with Admin(hooks) as admin:
        current = admin.status()
        parked = admin.parked(PARKED_SHOWN) if current.parked_lanes else []
    if as_json:
        shown = current.to_dict()
        shown["parked"] = [
            {"handler": d.handler, "return": d.return_id, "dead_letter": d.id} for d in parked
        ]
        click.echo(orjson.dumps(shown).decode())
        return
    values = current.to_dict()
    rows = [(label, _status_value(name, values[name])) for name, label in STATUS_LABELS]
    click.echo(table(("", ""), rows).split("\n", 1)[1])
    if current.quiet:
        click.echo(
            f"\nquiet: no event stored for over {hooks.settings.alert_no_events_after} s "
            "(alert_no_events_after): is the Redo subscription still there and pointed "
            "here, with a secret this receiver accepts? `redo-hooks doctor APP --url URL`"
        )
    if current.schema_drift:
        drift = current.schema_drift[:DRIFT_SHOWN]
        untracked = current.schema_drift_untracked
        click.echo(
            f"\nschema drift: what Redo sent that the models do not know (the {len(drift)} most "
            f"seen{f'; {untracked} more seen past the tracked cap' if untracked else ''}; "
            "docs/observability.md):"
        )
        click.echo(
            table(
                ("kind", "path", "value", "seen", "first seen", "last seen", "in return"),
                [
                    (
                        d.kind,
                        d.path,
                        d.value or "-",
                        d.count,
                        local_time(d.first_seen),
                        local_time(d.last_seen),
                        d.sample_return,
                    )
                    for d in drift
                ],
            )
        )
    if parked:
        click.echo(f"\nparked lanes (the oldest {len(parked)}; `redo-hooks dead APP show ID`):")
        click.echo(
            table(
                ("handler", "return", "dead letter", "since"),
                [(d.handler, d.return_id, d.id, local_time(d.dead_at)) for d in parked],
            )
        )


#: Parked lanes ``status`` names, oldest first.
PARKED_SHOWN = 20

#: ``status``'s lines: each figure's name in :class:`Status` and its label.
STATUS_LABELS = (
    ("queued_jobs", "queued jobs"),
    ("running_jobs", "running jobs"),
    ("scheduled_retries", "scheduled retries"),
    ("throttled_jobs", "throttled (waiting for a permit)"),
    ("quarantined_lanes", "quarantined (alone after a crash)"),
    ("last_event_at", "last event stored"),
    ("failed_jobs", "failed jobs"),
    ("events_waiting", "events waiting"),
    ("lanes_waiting", "lanes waiting"),
    ("oldest_waiting_age_s", "oldest wait"),
    ("dead_letters", "dead letters"),
    ("parked_lanes", "parked lanes"),
    ("skipped_stale", "skipped as stale"),
    ("missing_handlers", "missing handlers"),
    ("schema_drift", "schema drift"),
)

#: Schema-drift findings ``status`` lists, most seen first.
DRIFT_SHOWN = 10


def _status_value(name: str, value: Any) -> str:
    if name == "last_event_at":
        return "-" if value is None else local_time(value)
    if name == "oldest_waiting_age_s":
        return "-" if value is None else _duration(value)
    if name == "missing_handlers":
        return ", ".join(f"{h} ({n} lanes)" for h, n in value.items()) or "-"
    if name == "schema_drift":
        return f"{len(value)} finding(s)" if value else "-"
    if name == "skipped_stale":
        return ", ".join(f"{h}: {n}" for h, n in value.items()) or "-"
    return f"{value:,}"


def _duration(seconds: float) -> str:
    """``6.3 s``, ``4 min 10 s``, ``2 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@click.command("replay")
@click.argument("app", envvar="APP")
@click.option("--since", help="Received at or after: ISO 8601, or an age like 2h or 7d.")
@click.option("--until", help="Received at or before: ISO 8601, or an age.")
@click.option("--return", "return_id", help="Only this return's events (its id).")
@event_option("Only events of this name: return.created, return.updated, return.backfill.")
@click.option("--handler", "handlers", multiple=True, help="Only to this handler (repeatable).")
@click.option(
    "--outcome",
    type=click.Choice(["failed", "ok", "skipped"]),
    help="Only to handlers whose run ended so (failed: dead, parked or retrying).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Counts per handler as one JSON object.")
@click.option("--yes", is_flag=True, help="Do not ask before replaying every stored event.")
def replay_command(
    app: str,
    *,
    since: str | None,
    until: str | None,
    return_id: str | None,
    handlers: tuple[str, ...],
    outcome: str | None,
    event_name: str | None = None,
    dry_run: bool,
    as_json: bool,
    yes: bool,
) -> None:
    """Route stored events to their handlers again, oldest first, in lane order.

    With no filter (every stored event) it counts first and asks (--yes: not).
    """

    from ..ops.admin import Admin
    from ..ops.replay import Selection, parse_time

    try:
        hooks = load_app(app, operator=True)
        selection = Selection(
            since=None if since is None else parse_time(since),
            until=None if until is None else parse_time(until),
            return_id=return_id,
            event_name=event_name,
            handlers=handlers,
            outcome=outcome,
        )
        unfiltered = not (since or until or return_id or event_name or handlers or outcome)
        with Admin(hooks) as admin:
            if unfiltered and not dry_run and not yes:
                would = admin.replay(selection, dry_run=True)
                _confirm(
                    f"No filter: replay every stored event, {sum(would.values())} "
                    "event-handler pair(s)?"
                )
            queued = admin.replay(selection, dry_run=dry_run)
    except RedoHooksError as error:
        fail(error)
        return
    if as_json:
        click.echo(orjson.dumps({"dry_run": dry_run, "queued": dict(queued)}).decode())
        return
    verb = "would replay" if dry_run else "replayed"
    for name, count in sorted(queued.items()):
        click.echo(f"{verb} {count} event(s) to {name}")
    click.echo(f"{verb} {sum(queued.values())} event-handler pair(s) in all")
