"""The receiver inside another app: the mount's bare path, and metrics served apart.

``ReceiverMount`` (``hooks.mount(path)``) is a mount that also takes ``POST``
to its bare path, with or without the parent's lifespan;
``serve_mount_roots`` does the same for a plain ``Mount`` when the parent runs
``hooks.lifespan``; ``create_metrics_app`` serves the receiver's
``/metrics`` on its own, for a port or path that is not public.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route

from ..settings import Settings
from ..store.connections import async_redis_client
from ..store.keys import Keys
from .metrics import CONTENT_TYPE, ReceiverMetrics


def new_metrics(settings: Settings) -> ReceiverMetrics:
    """The request counters a receiver adds to (one set per ``RedoHooks``)."""
    return ReceiverMetrics(Keys(settings.key_prefix), settings.queue, settings.quarantine_queue)


def create_metrics_app(settings: Settings, metrics: ReceiverMetrics) -> Starlette:
    """``GET /metrics`` alone, for an internal port or path apart from the webhook's.

    Renders ``metrics`` (the receiver's own counters, shared) and the
    pipeline's figures, read from Redis over a connection of its own, opened
    for each scrape and closed after it: it may run on another thread's event
    loop than the receiver, or mounted where no lifespan reaches it.
    """

    async def render(request: Request) -> Response:
        timeout = settings.redis_timeout
        redis = async_redis_client(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            body = await metrics.render(redis, timeout)
        finally:
            await redis.aclose()
        return Response(body, media_type=CONTENT_TYPE)

    return Starlette(routes=[Route("/metrics", render, methods=["GET"])])


class ReceiverMount(Mount):
    """A mount of the receiver that also answers its own path, without a trailing slash.

    ``Mount("/webhooks/redo", app=...)`` matches ``/webhooks/redo/…`` only:
    Starlette answers ``POST /webhooks/redo`` with a 307 to the slashed URL
    (behind a TLS proxy, to ``http://``), which a webhook sender may not
    follow. This mount takes the bare path as the receiver's ``/`` itself,
    so it needs no lifespan for it.
    """

    def matches(self, scope: Any) -> tuple[Match, Any]:
        """As a mount; the bare path too, as if it had its trailing slash."""
        if scope["type"] == "http" and _route_path(scope) == self.path:
            slashed = {**scope, "path": scope["path"] + "/"}
            match, child = super().matches(slashed)
            if match is not Match.NONE:
                return match, {**child, "path": slashed["path"]}
        return super().matches(scope)


def _route_path(scope: Any) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class _AtMountRoot:
    """The mount's own path (``/webhooks/redo``, no trailing slash) as the receiver's ``/``."""

    def __init__(self, app: Starlette, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        root = scope.get("root_path", "")
        inner = {**scope, "root_path": root + self.path, "path": scope["path"] + "/"}
        await self.app(inner, receive, send)


def serve_mount_roots(app: object, receivers: Iterable[Starlette]) -> list[str]:
    """Let ``POST`` to each receiver mount's path without its trailing slash reach it.

    ``app.mount("/webhooks/redo", hooks.asgi())`` matches ``/webhooks/redo/…``
    only: Starlette answers ``POST /webhooks/redo`` with a 307 to the slashed
    URL (behind a TLS proxy, to ``http://``), which a webhook sender may not
    follow. For each mount of ``receivers`` in ``app`` (nested mounts
    included), this adds a ``POST`` route at the bare path, just before the
    mount. Returns the paths it added; called by :meth:`RedoHooks.lifespan`.
    """
    ours = {id(receiver) for receiver in receivers}
    added: list[str] = []

    def walk(routes: list[BaseRoute]) -> None:
        for index in range(len(routes) - 1, -1, -1):
            route = routes[index]
            if not isinstance(route, Mount):
                continue
            if id(route.app) not in ours:
                inner = getattr(route.app, "routes", None)
                if isinstance(inner, list):
                    walk(inner)
                continue
            exists = any(isinstance(r, Route) and r.path == route.path for r in routes)
            if route.path and not exists:
                endpoint = _AtMountRoot(route.app, route.path)  # type: ignore[arg-type]
                bare = Route(route.path, endpoint, methods=["POST"], include_in_schema=False)
                routes.insert(index, bare)
                added.append(route.path)

    routes = getattr(getattr(app, "router", app), "routes", None)
    if isinstance(routes, list):
        walk(routes)
    return added


__all__ = [
    "ReceiverMetrics",
    "ReceiverMount",
    "create_metrics_app",
    "new_metrics",
    "serve_mount_roots",
]
