"""The dashboard's pages: each reads the operator API and renders one template.

The operator API is synchronous (redis-py); each page calls it on Starlette's
thread pool, so a slow Redis never blocks the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jinja2 import Environment, pass_context
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import ConfigurationError
from ..models import EVENT_NAMES
from ..ops.admin import Admin, DeadFilter, DeadPage
from ..ops.events import EventFilter
from ..ops.replay import REPLAY_OUTCOMES, Selection, parse_time
from ..store import runlog
from .chart import bars

#: Rows per page.
PAGE = 50
#: The overview's auto-refresh periods (a meta refresh: no script).
REFRESH_SECONDS = ("10", "30", "60")
#: What a dead letter's buttons do: the operator API method of each.
DEAD_ACTIONS = {"retry": "retry_dead", "drop": "drop_dead"}


#: The cookie that holds the viewer's time zone (an IANA name); UTC without it.
TZ_COOKIE = "redo_hooks_tz"


def zone(name: str | None) -> ZoneInfo | None:
    """The time zone ``name`` names, or ``None`` (UTC) for anything else."""
    if not name or name == "UTC" or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def when(epoch: float | None, tz: ZoneInfo | None = None) -> str:
    """A time as the pages show it, to the second: UTC, or in the viewer's zone."""
    if epoch is None:
        return "-"
    if tz is None:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M:%S %Z")


@pass_context
def _when(context: Any, epoch: float | None) -> str:
    return when(epoch, context.get("tz"))


def took(seconds: float | None) -> str:
    """A duration as the pages show it."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def bound(seconds: float | None) -> str:
    """A histogram bucket's upper bound as the pages show it."""
    if seconds is None:
        return "-"
    return "> 60 s" if seconds == float("inf") else f"≤ {took(seconds)}"


def time_field(value: str | None) -> float | None:
    """A time typed in a form: an age (``2h``), or ISO 8601 (UTC if no zone given)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if "T" in value and not value.endswith("Z") and "+" not in value[10:]:
        value += "Z"
    return parse_time(value)


def blank(value: str | None) -> str | None:
    """``None`` for an empty form field."""
    return value.strip() if value and value.strip() else None


class Pages:
    """The page endpoints, over one operator API."""

    def __init__(
        self, env: Environment, admin: Callable[[], Admin], log: Any, redo_api: bool = False
    ) -> None:
        self.env = env
        self.admin = admin
        self.log = log
        #: Whether Redo's API is configured here (the replay page offers Redo's replay).
        self.redo_api = redo_api
        env.filters["when"] = _when
        env.filters["took"] = took
        env.filters["bound"] = bound

    def render(self, request: Request, template: str, code: int = 200, **data: Any) -> Response:
        """``template`` with ``data``, the viewer, and links that work under any mount."""
        page = self.env.get_template(template).render(
            request=request,
            viewer=request.state.viewer,
            url=request.url_for,
            done=request.query_params.get("done", ""),
            tz=zone(request.cookies.get(TZ_COOKIE)),
            redo_api=self.redo_api,
            **data,
        )
        return HTMLResponse(page, code)

    def act(self, request: Request, action: str, **details: Any) -> None:
        """Log an action: which token, what, how many."""
        self.log.info(
            "dashboard_action", token=request.state.viewer.label, action=action, **details
        )

    async def overview(self, request: Request) -> Response:
        """Waiting, running, retrying, throttled, dead, parked, oldest wait; the last hour
        per minute; each handler; each worker process. ``?refresh=N``: reload every N s."""

        def read() -> tuple[Any, ...]:
            admin = self.admin()
            return admin.status(), admin.activity(60), admin.handlers(), admin.workers()

        status, activity, handlers, workers = await run_in_threadpool(read)
        chart = bars(activity.received, activity.failed, activity.start)
        refresh = request.query_params.get("refresh", "")
        return self.render(
            request,
            "overview.html",
            status=status,
            activity=activity,
            chart=chart,
            handlers=handlers,
            workers=workers,
            refresh=int(refresh) if refresh in REFRESH_SECONDS else None,
            now=time.time(),
        )

    async def events(self, request: Request) -> Response:
        """Search by return, order, type, outcome and time; a page at a time."""
        q = request.query_params
        error = ""
        try:
            where = EventFilter(
                return_id=blank(q.get("return_id")),
                order=blank(q.get("order")),
                event_name=blank(q.get("event")),
                outcome=blank(q.get("outcome")),
                since=time_field(q.get("since")),
                until=time_field(q.get("until")),
            )
        except ConfigurationError as exc:
            where, error = None, str(exc)
        page = None
        if where is not None:
            found = where
            try:
                page = await run_in_threadpool(
                    lambda: self.admin().events(found, cursor=q.get("cursor") or None, limit=PAGE)
                )
            except ConfigurationError as exc:  # a mangled ?cursor=
                error = str(exc)
        more = None if page is None or page.cursor is None else _with(request, cursor=page.cursor)
        throttled: set[tuple[str, str]] = set()
        if page is not None:
            waiting = [
                (r.handler, e.return_id)
                for e in page.events
                for r in e.runs
                if r.outcome == "waiting"
            ]
            if waiting:
                throttled = await run_in_threadpool(self.admin().throttled, waiting)
        return self.render(
            request,
            "events.html",
            throttled=throttled,
            page=page,
            error=error,
            q=q,
            names=EVENT_NAMES,
            outcomes=runlog.SEARCHABLE,
            more=more,
            code=400 if error else 200,
        )

    async def event(self, request: Request) -> Response:
        """One event: shown within its return's timeline."""
        key = request.path_params["key"]
        event = await run_in_threadpool(lambda: self.admin().event(key))
        if event is None:
            return self.render(request, "missing.html", 404, what=f"event {key}")
        target = request.url_for("timeline", return_id=event.return_id)
        return RedirectResponse(f"{target}#{key}", status_code=303)

    async def timeline(self, request: Request) -> Response:
        """A return's events in order, each handler's runs, each body."""
        return_id = request.path_params["return_id"]

        def read() -> tuple[Any, Any, Any]:
            admin = self.admin()
            events = admin.timeline(return_id)
            handlers = sorted({run.handler for e in events for run in e.runs})
            throttled = {h for h, _ in admin.throttled([(h, return_id) for h in handlers])}
            return events, admin.parked_on(return_id, handlers), throttled

        events, parked, throttled = await run_in_threadpool(read)
        return self.render(
            request,
            "timeline.html",
            return_id=return_id,
            events=events,
            parked=parked,
            throttled=throttled,
            code=200 if events else 404,
        )

    def _dead_filter(self, fields: Any) -> DeadFilter:
        return DeadFilter(
            handler=blank(fields.get("handler")),
            return_id=blank(fields.get("return_id")),
            reason=blank(fields.get("reason")),
            issue=blank(fields.get("issue")),
            before=time_field(fields.get("before")),
        )

    async def dead(self, request: Request) -> Response:
        """Dead letters, newest first, with filters and bulk actions."""
        q = request.query_params
        cursor = q.get("cursor") or None

        def read(where: DeadFilter) -> tuple[DeadPage, dict[str, int]]:
            admin = self.admin()
            page = admin.dead_letters(where, cursor=cursor, limit=PAGE)
            return page, admin.behind_each(page.letters)

        try:
            where = self._dead_filter(q)
            page, behind = await run_in_threadpool(read, where)
        except ConfigurationError as exc:  # a mangled ?cursor= or time
            return self.render(
                request, "dead.html", 400, page=DeadPage([], None), where=None, q=q, error=str(exc)
            )
        more = None if page.cursor is None else _with(request, cursor=page.cursor)
        return self.render(
            request, "dead.html", page=page, where=where, q=q, more=more, behind=behind
        )

    async def dead_show(self, request: Request) -> Response:
        """One dead letter: its error, traceback and event."""
        dead_id = request.path_params["dead_id"]

        def read() -> tuple[Any, Any]:
            admin = self.admin()
            letter = admin.dead_letter(dead_id)
            return letter, None if letter is None else admin.dead_event(letter)

        letter, event = await run_in_threadpool(read)
        if letter is None:
            return self.render(request, "missing.html", 404, what=f"dead letter {dead_id}")
        return self.render(request, "dead_show.html", letter=letter, event=event)

    async def dead_act(self, request: Request) -> Response:
        """Retry or drop one dead letter; a drop is confirmed first (``confirm=1``)."""
        dead_id, action = request.path_params["dead_id"], request.path_params["action"]
        if action not in DEAD_ACTIONS:
            return self.render(request, "missing.html", 404, what=f"action {action}")
        if action == "drop" and request.state.form.get("confirm") != "1":
            return await self.dead_drop_confirm(request)
        act = getattr(self.admin(), DEAD_ACTIONS[action])
        done = await run_in_threadpool(lambda: act([dead_id]))
        self.act(request, action, dead_letter=dead_id, count=done)
        return self._dead_done(request, action, done)

    def _dead_done(self, request: Request, action: str, done: int) -> Response:
        """Back to the dead letters, saying how many were retried or dropped."""
        message = f"{'retried' if action == 'retry' else 'dropped'} {done} dead letter(s)"
        return RedirectResponse(
            f"{request.url_for('dead')}?{urlencode({'done': message})}", status_code=303
        )

    async def dead_drop_confirm(self, request: Request) -> Response:
        """Asks before one letter is dropped, saying what waits behind a parked one."""
        dead_id = request.path_params["dead_id"]

        def read() -> tuple[Any, int]:
            admin = self.admin()
            letter = admin.dead_letter(dead_id)
            behind = 0 if letter is None or not letter.parked else admin.waiting_behind(letter)
            return letter, behind

        letter, behind = await run_in_threadpool(read)
        if letter is None:
            return self.render(request, "missing.html", 404, what=f"dead letter {dead_id}")
        return self.render(request, "drop_confirm.html", letter=letter, behind=behind)

    async def dead_bulk_confirm(self, request: Request) -> Response:
        """The count of exactly the filter typed, and the form that acts on that filter."""
        return await self._bulk_confirm(request, request.query_params)

    async def _bulk_confirm(self, request: Request, fields: Any) -> Response:
        action = fields.get("action")
        if action not in DEAD_ACTIONS:
            return self.render(request, "missing.html", 404, what=f"action {action}")
        where = self._dead_filter(fields)
        count = await run_in_threadpool(lambda: self.admin().count_dead(where))
        return self.render(request, "dead_confirm.html", action=action, where=where, count=count)

    async def dead_bulk(self, request: Request) -> Response:
        """Retry or drop every dead letter a filter selects: count, confirm, act."""
        fields = request.state.form
        action = fields.get("action")
        if action not in DEAD_ACTIONS:
            return self.render(request, "missing.html", 404, what=f"action {action}")
        where = self._dead_filter(fields)
        admin = self.admin()
        if fields.get("confirm") != "1":
            return await self._bulk_confirm(request, fields)
        act = getattr(admin, DEAD_ACTIONS[action])
        done = await run_in_threadpool(lambda: act(where=where))
        self.act(
            request,
            f"bulk_{action}",
            count=done,
            handler=where.handler,
            return_id=where.return_id,
            reason=where.reason,
            issue=where.issue,
        )
        return self._dead_done(request, action, done)

    async def timezone_form(self, request: Request) -> Response:
        """Choose how times are shown: UTC, or a time zone (kept in a cookie)."""
        zones = sorted(available_timezones())
        return self.render(request, "timezone.html", zones=zones, back=request.query_params)

    async def timezone(self, request: Request) -> Response:
        """Keep the chosen zone and go back to the page the viewer was on."""
        fields = request.state.form
        chosen = zone(fields.get("zone"))
        back = fields.get("next") or ""
        root = request.scope.get("root_path") or ""
        if (
            not back.startswith(root + "/")
            or back.startswith("//")
            or any(c in back for c in "\\\r\n")
        ):
            back = str(request.url_for("overview").path)
        response = RedirectResponse(back, status_code=303)
        if chosen is None:
            response.delete_cookie(TZ_COOKIE, path=root or "/")
        else:
            response.set_cookie(
                TZ_COOKIE, chosen.key, max_age=365 * 86400, path=root or "/", samesite="strict"
            )
        return response

    async def issues(self, request: Request) -> Response:
        """Open issues: dead letters grouped by handler and error, newest first."""
        handler = blank(request.query_params.get("handler"))
        found = await run_in_threadpool(lambda: self.admin().issues(handler=handler, limit=PAGE))
        return self.render(request, "issues.html", issues=found, handler=handler or "")

    async def issue(self, request: Request) -> Response:
        """One issue: counts, sample traceback, returns, what waits behind it, actions."""
        fingerprint = request.path_params["fingerprint"]
        found = await run_in_threadpool(lambda: self.admin().issue(fingerprint))
        if found is None:
            return self.render(request, "missing.html", 404, what=f"open issue {fingerprint}")
        return self.render(request, "issue.html", issue=found)

    async def replay_form(self, request: Request) -> Response:
        """The replay filter form."""
        return self.render(
            request,
            "replay.html",
            fields=request.query_params,
            names=EVENT_NAMES,
            outcomes=REPLAY_OUTCOMES,
        )

    async def replay(self, request: Request) -> Response:
        """Count what a replay would route (dry run), then, confirmed, replay it."""
        fields = request.state.form
        try:
            handler = blank(fields.get("handler"))
            selection = Selection(
                since=time_field(fields.get("since")),
                until=time_field(fields.get("until")),
                return_id=blank(fields.get("return_id")),
                event_name=blank(fields.get("event")),
                handlers=(handler,) if handler else (),
                outcome=blank(fields.get("outcome")),
            )
            admin = self.admin()
            confirmed = fields.get("confirm") == "1"
            unfiltered = selection == Selection()
            if confirmed and unfiltered:
                # Every stored event: the count must be typed, not one more click.
                would = await run_in_threadpool(lambda: admin.replay(selection, dry_run=True))
                if fields.get("typed", "").strip() != str(sum(would.values())):
                    raise ConfigurationError(
                        "no filter selects every stored event: type the count shown to confirm"
                    )
            counts = await run_in_threadpool(lambda: admin.replay(selection, dry_run=not confirmed))
        except ConfigurationError as exc:
            return self.render(
                request,
                "replay.html",
                400,
                fields=fields,
                names=EVENT_NAMES,
                outcomes=REPLAY_OUTCOMES,
                error=str(exc),
            )
        if confirmed:
            self.act(request, "replay", count=sum(counts.values()), **_selection_log(selection))
        return self.render(
            request,
            "replay.html",
            fields=fields,
            names=EVENT_NAMES,
            outcomes=REPLAY_OUTCOMES,
            counts=dict(sorted(counts.items())),
            total=sum(counts.values()),
            confirmed=confirmed,
            unfiltered=unfiltered,
        )


def _selection_log(selection: Selection) -> dict[str, Any]:
    return {
        "since": selection.since,
        "until": selection.until,
        "return_id": selection.return_id,
        "event_name": selection.event_name,
        "handlers": list(selection.handlers),
    }


def _with(request: Request, **changes: str) -> str:
    """This page's URL with ``changes`` to its query."""
    params = {k: v for k, v in request.query_params.items() if v and k != "done"}
    params.update(changes)
    return f"{request.url.path}?{urlencode(params)}"
