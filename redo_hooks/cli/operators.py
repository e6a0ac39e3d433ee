"""The operators' commands: ``dead``, ``status`` and ``replay``.

Each reads the app's settings and handlers from its import string, and
Redis; none needs the app's secrets.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from ..errors import RedoHooksError
from ..store.connections import redis_client
from .common import event_name, fail, load_app


@click.group()
@click.argument("app")
@click.pass_context
def dead(ctx: click.Context, app: str) -> None:
    """Dead letters of APP: events a handler gave up on. See `dead APP list`."""

    from ..ops.dead_letters import DeadLetters

    try:
        hooks = load_app(app, operator=True)
    except RedoHooksError as error:
        fail(error)
        return
    connection = redis_client(hooks.settings.redis_url)
    ctx.call_on_close(connection.close)
    ctx.obj = DeadLetters(connection, hooks.settings, hooks.registry)


def _dead_letters() -> Any:
    return click.get_current_context().obj


@dead.command("list")
@click.option("--handler", help="Only this handler's.")
@click.option("--return", "subject", help="Only this return's (its id).")
@click.option("--older-than", help="Only those dead for at least this long, e.g. 2h or 7d.")
@click.option("--limit", type=click.IntRange(1), help="At most this many (the oldest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead_list(
    handler: str | None,
    subject: str | None,
    older_than: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List dead letters, oldest first."""
    letters = _dead_letters().list(
        handler=handler, subject=subject, before=_age(older_than), limit=limit
    )
    if as_json:
        for letter in letters:
            click.echo(orjson.dumps(letter.to_dict()).decode())
        return
    if not letters:
        click.echo("no dead letters")
        return
    click.echo(f"{'id':32}  {'dead at (UTC)':19}  {'handler':30}  {'return':24}  tries  error")
    for d in letters:
        when = datetime.fromtimestamp(d.dead_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{d.id:32}  {when:19}  {d.handler[:30]:30}  {d.subject[:24]:24}  "
            f"{d.attempts:>5}  {d.error[:60]}"
        )


@dead.command("show")
@click.argument("dead_id")
@click.option("--json", "as_json", is_flag=True)
def dead_show(dead_id: str, as_json: bool) -> None:
    """Show one dead letter, traceback included."""
    letter = _dead_letters().get(dead_id)
    if letter is None:
        click.echo(f"redo-hooks: no dead letter {dead_id}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(orjson.dumps(letter.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    for name, value in letter.to_dict().items():
        if name != "traceback":
            click.echo(f"{name:10} {value}")
    if letter.traceback:
        click.echo(letter.traceback.rstrip())


def _age(older_than: str | None) -> float | None:
    from ..ops.replay import parse_time

    if older_than is None:
        return None
    try:
        return parse_time(older_than)
    except RedoHooksError as error:
        raise click.UsageError(str(error)) from None


def _select(
    ids: tuple[str, ...], every: bool, handler: str | None, subject: str | None, older: str | None
) -> Any:
    letters = _dead_letters()
    if ids and (every or handler or subject or older):
        raise click.UsageError("give ids, or --all/--handler/--return/--older-than, not both")
    if ids:
        found = [letters.get(i) for i in ids]
        missing = [i for i, d in zip(ids, found, strict=True) if d is None]
        if missing:
            raise click.UsageError(f"no dead letter {', '.join(missing)}")
        return found
    if not (every or handler or subject or older):
        raise click.UsageError(
            "give dead-letter ids, or --all, --handler, --return or --older-than"
        )
    return letters.list(handler=handler, subject=subject, before=_age(older))


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
                    click.echo(f"{verb} {letter.id}: {letter.handler} on return {letter.subject}")
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
    command = click.argument("ids", nargs=-1)(command)
    command = click.option("--all", "every", is_flag=True, help="Every dead letter.")(command)
    command = click.option("--handler", help="Every dead letter of this handler.")(command)
    command = click.option(
        "--older-than", "older", help="Every dead letter dead for at least this long (2h, 7d)."
    )(command)
    return click.option("--return", "subject", help="Every dead letter of this return.")(command)


@dead.command("retry")
@_selection_options
def dead_retry(
    ids: tuple[str, ...],
    *,
    every: bool,
    handler: str | None,
    subject: str | None,
    older: str | None,
    as_json: bool,
) -> None:
    """Route dead-lettered events to their handler again, at the end of their lane.

    A parked lane runs its held event again, first.
    """
    letters = _select(ids, every, handler, subject, older)
    _act(letters, _dead_letters().retry, "retried", "queued again", as_json)


@dead.command("drop")
@_selection_options
def dead_drop(
    ids: tuple[str, ...],
    *,
    every: bool,
    handler: str | None,
    subject: str | None,
    older: str | None,
    as_json: bool,
) -> None:
    """Forget dead letters; their events expire after the retention time.

    A parked lane skips its held event and moves on.
    """
    letters = _select(ids, every, handler, subject, older)
    _act(letters, _dead_letters().drop, "dropped", "dropped", as_json)


@click.command()
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(app: str, as_json: bool) -> None:
    """What is queued, running, retrying, dead or parked, and the oldest wait."""

    from ..ops.status import snapshot

    try:
        hooks = load_app(app, operator=True)
    except RedoHooksError as error:
        fail(error)
        return
    with redis_client(hooks.settings.redis_url) as connection:
        current = snapshot(connection, hooks.settings, hooks.registry)
    if as_json:
        click.echo(orjson.dumps(current.to_dict()).decode())
        return
    for name, value in current.to_dict().items():
        shown = value
        if name == "oldest_waiting_age_s":
            shown = "-" if value is None else f"{value:.1f} s"
        elif name == "missing_handlers":
            shown = ", ".join(f"{h} ({n} lanes)" for h, n in value.items()) or "-"
        elif name == "skipped_stale":
            shown = ", ".join(f"{h}: {n}" for h, n in value.items()) or "-"
        click.echo(f"{name.replace('_', ' '):22} {shown}")


@click.command("replay")
@click.argument("app")
@click.option("--since", help="Received at or after: ISO 8601, or an age like 2h or 7d.")
@click.option("--until", help="Received at or before: ISO 8601, or an age.")
@click.option("--return", "subject", help="Only this return's events (its id).")
@click.option(
    "--type",
    "event_type",
    callback=event_name,
    help="Only events of this type: return.created, return.updated or return.backfill.",
)
@click.option("--handler", "handlers", multiple=True, help="Only to this handler (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Counts per handler as one JSON object.")
def replay_command(
    app: str,
    *,
    since: str | None,
    until: str | None,
    subject: str | None,
    event_type: str | None,
    handlers: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Route stored events to their handlers again, oldest first, in lane order."""

    from ..ops.replay import Selection, parse_time, replay

    try:
        hooks = load_app(app, operator=True)
        selection = Selection(
            since=None if since is None else parse_time(since),
            until=None if until is None else parse_time(until),
            subject=subject,
            event_type=event_type,
            handlers=handlers,
        )
        with redis_client(hooks.settings.redis_url) as connection:
            queued = replay(connection, hooks.settings, hooks.registry, selection, dry_run=dry_run)
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
