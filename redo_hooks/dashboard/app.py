"""The dashboard's ASGI app: server-rendered pages over the operator API.

Every page reads through :class:`redo_hooks.ops.admin.Admin`; every change
(retry, drop, replay, log out) is a POST carrying the session's CSRF token
(or made with a bearer token), and is logged with the token's label. No page
shows anything before the viewer is known: a browser is sent to the login
page, a request with a wrong bearer token gets 401. Jinja2 escapes every
value (event bodies can hold HTML); no script runs on any page.
"""

from __future__ import annotations

import contextlib
import html
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..dispatch.handlers import Registry
from ..errors import ConfigurationError, RedoHooksError
from ..logs import get_logger
from ..ops.admin import Admin
from ..redo_api import RedoAPI
from ..settings import Settings
from . import redo_side
from .auth import (
    COOKIE,
    SESSION_SECONDS,
    Gate,
    LoginThrottle,
    Viewer,
    is_loopback,
    parse_tokens,
)
from .headers import Protect
from .pages import Pages

log = get_logger("redo_hooks.dashboard")

Endpoint = Callable[[Request], Awaitable[Response]]


def create_dashboard(
    settings: Settings,
    *,
    registry: Registry | None = None,
    tokens: list[str] | None = None,
    allow_loopback_without_token: bool = False,
    admin: Admin | None = None,
    redo_api: Callable[[], RedoAPI | None] | None = None,
) -> Starlette:
    """The dashboard app (see :meth:`RedoHooks.dashboard` and ``docs/dashboard.md``).

    ``tokens``: entries as in ``REDO_HOOKS_DASHBOARD_TOKEN`` (default: that
    setting). Without any, it refuses to be built unless
    ``allow_loopback_without_token``: then it answers only requests from
    this machine (127.0.0.1, ::1), each as an admin, for development.
    ``redo_api``: makes Redo's API client for asking Redo to resend events
    (default: one from ``REDO_API_SECRET``, when it is set).
    """
    entries = (
        tokens if tokens is not None else [t.get_secret_value() for t in settings.dashboard_token]
    )
    parsed = parse_tokens(entries)
    if not parsed and not allow_loopback_without_token:
        raise ConfigurationError(
            "the dashboard needs a token: set REDO_HOOKS_DASHBOARD_TOKEN=admin:you=<token> "
            "(a read-only one is label=<token>), or, on your own machine only, run "
            "`redo-hooks dashboard APP --no-token` (bound to 127.0.0.1)"
        )
    shared: dict[str, Admin] = {}

    def get_admin() -> Admin:
        if "admin" not in shared:
            shared["admin"] = admin or Admin(settings, registry=registry)
        return shared["admin"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if "admin" in shared and admin is None:
            shared.pop("admin").close()

    env = Environment(
        loader=PackageLoader("redo_hooks.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    redo = redo_api if redo_api is not None else redo_side.from_env
    pages = Pages(env, get_admin, log, redo_api=redo_api is not None or redo_side.configured())
    redo_replay = redo_side.RedoReplay(pages, redo)
    guard = Guard(Gate(parsed), allow_loopback_without_token and not parsed)
    static = StaticFiles(directory=str(files("redo_hooks.dashboard") / "static"))
    routes = [
        Route("/login", guard.login_page, methods=["GET"], name="login"),
        Route("/login", guard.login, methods=["POST"]),
        Route(
            "/logout",
            guard.protect(guard.logout, write=True, admin=False),  # a reader may log out
            methods=["POST"],
            name="logout",
        ),
        Route("/", guard.protect(pages.overview), name="overview"),
        Route("/events", guard.protect(pages.events), name="events"),
        Route("/events/{key}", guard.protect(pages.event), name="event"),
        Route("/returns/{return_id:path}", guard.protect(pages.timeline), name="timeline"),
        Route("/timezone", guard.protect(pages.timezone_form), name="timezone"),
        Route(
            "/timezone",
            guard.protect(pages.timezone, write=True, admin=False),  # a reader may choose
            methods=["POST"],
            name="timezone_post",
        ),
        Route("/issues", guard.protect(pages.issues), name="issues"),
        Route("/issues/{fingerprint}", guard.protect(pages.issue), name="issue"),
        Route("/dead", guard.protect(pages.dead), name="dead"),
        Route("/dead/{dead_id}", guard.protect(pages.dead_show), name="dead_show"),
        Route(
            "/dead/{dead_id}/{action:str}",
            guard.protect(pages.dead_act, write=True),
            methods=["POST"],
            name="dead_act",
        ),
        Route("/dead/{dead_id}/drop", guard.protect(pages.dead_drop_confirm), name="dead_drop"),
        Route(
            "/bulk", guard.protect(pages.dead_bulk, write=True), methods=["POST"], name="dead_bulk"
        ),
        Route("/bulk", guard.protect(pages.dead_bulk_confirm), name="dead_bulk_confirm"),
        Route("/replay", guard.protect(pages.replay_form), name="replay"),
        Route(
            "/replay",
            guard.protect(pages.replay, write=True),
            methods=["POST"],
            name="replay_post",
        ),
        Route(
            "/replay/redo",
            guard.protect(redo_replay.post, write=True),
            methods=["POST"],
            name="redo_replay",
        ),
        Mount("/static", static, name="static"),
    ]
    loopback_only = allow_loopback_without_token and not parsed
    middleware = [Middleware(Protect, loopback_hosts_only=loopback_only)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the last of each name)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {name: values[-1] for name, values in parse_qs(body).items()}


class Guard:
    """Logs viewers in and out, and lets only a known viewer reach a page."""

    def __init__(self, gate: Gate, loopback_only: bool) -> None:
        self.gate = gate
        self.loopback_only = loopback_only
        self.throttle = LoginThrottle()
        # Without tokens there is no session: one random CSRF token per process,
        # which a page of another origin cannot read.
        self.loopback_csrf = secrets.token_urlsafe(16)

    def viewer(self, request: Request) -> Viewer | None:
        """Who sent ``request``: a bearer token, a session cookie, or (dev) loopback."""
        if self.loopback_only:
            client = request.client.host if request.client else ""
            return (
                Viewer("loopback", "admin", csrf=self.loopback_csrf)
                if is_loopback(client)
                else None
            )
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and presented:
            return self.gate.bearer(presented.strip())
        cookie = request.cookies.get(COOKIE)
        return self.gate.session(cookie) if cookie else None

    def protect(
        self, endpoint: Endpoint, *, write: bool = False, admin: bool | None = None
    ) -> Endpoint:
        """``endpoint`` for known viewers only; ``write``: a POST with the CSRF token,
        and (unless ``admin=False``) from an admin."""
        admin_only = write if admin is None else admin

        async def guarded(request: Request) -> Response:
            viewer = self.viewer(request)
            if viewer is None:
                if request.method == "GET" and "authorization" not in request.headers:
                    back = urlencode({"next": _here(request)})
                    return RedirectResponse(f"{local(request, 'login')}?{back}", status_code=303)
                return PlainTextResponse(
                    "401: log in, or send a valid bearer token",
                    401,
                    headers={"WWW-Authenticate": 'Bearer realm="redo-hooks dashboard"'},
                )
            if write:
                fields = await form(request)
                if viewer.csrf and fields.get("csrf") != viewer.csrf:
                    log.warning("dashboard_csrf_refused", token=viewer.label, path=request.url.path)
                    return PlainTextResponse("403: the form's CSRF token is missing or wrong", 403)
                if admin_only and not viewer.admin:
                    log.warning("dashboard_refused", token=viewer.label, path=request.url.path)
                    return PlainTextResponse("403: this token is read-only", 403)
                request.state.form = fields
            request.state.viewer = viewer
            try:
                return await endpoint(request)
            except RedoHooksError as error:
                return PlainTextResponse(f"400: {error}", 400)

        return guarded

    async def login_page(
        self, request: Request, error: str = "", status: int = 200, back: str | None = None
    ) -> Response:
        """The login form; it sends back to the page that asked for it (``next``)."""
        target = _local_next(
            request, back if back is not None else request.query_params.get("next")
        )
        return HTMLResponse(
            LOGIN.format(action=local(request, "login"), error=error, next=html.escape(target)),
            status,
            headers={"WWW-Authenticate": 'Bearer realm="redo-hooks dashboard"'}
            if status == 401
            else None,
        )

    async def login(self, request: Request) -> Response:
        """Check a token and set the session cookie; then go back where the viewer was.

        A client with too many failed tries within a few minutes waits (429).
        """
        fields = await form(request)
        client = request.client.host if request.client else ""
        wait = self.throttle.wait(client)
        if wait > 0:
            log.warning("dashboard_login_throttled", client=client)
            return PlainTextResponse(
                f"429: too many failed logins from {client}; try again in {wait:.0f} s",
                429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        viewer = self.gate.bearer(fields.get("token", ""))
        if viewer is None:
            self.throttle.failed(client)
            log.warning("dashboard_login_refused", client=client)
            return await self.login_page(
                request, '<p class="error">Unknown token.</p>', 401, back=fields.get("next")
            )
        self.throttle.succeeded(client)
        log.info("dashboard_login", token=viewer.label)
        response = RedirectResponse(_local_next(request, fields.get("next")), status_code=303)
        response.set_cookie(
            COOKIE,
            self.gate.issue(viewer.label),
            max_age=SESSION_SECONDS,
            path=request.scope.get("root_path") or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """End the session."""
        log.info("dashboard_logout", token=request.state.viewer.label)
        response = RedirectResponse(local(request, "login"), status_code=303)
        response.delete_cookie(COOKIE, path=request.scope.get("root_path") or "/")
        return response


def _here(request: Request) -> str:
    """This request's path and query, as the page it is (under any mount)."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _local_next(request: Request, target: str | None) -> str:
    """``target`` if it is a path of this dashboard, else the overview: never another host."""
    root = request.scope.get("root_path") or ""
    if (
        target
        and target.startswith((root + "/") if root else "/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(c in target for c in "\r\n")
    ):
        return target
    return local(request, "overview")


def local(request: Request, name: str) -> str:
    """The path of route ``name`` (under any mount): redirects never name a host.

    A URL built from the request would take its host from the ``Host``
    header, which the client chooses: ``Host: evil.example`` would send a
    freshly logged-in browser there.
    """
    return str(request.url_for(name).path)


#: The login page stands alone: it must render without any data or session.
LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redo-hooks — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
input,button{{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}}
.error{{color:#b00020}}</style></head>
<body><h1>redo-hooks</h1>{error}
<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="token">Dashboard token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></body></html>"""
