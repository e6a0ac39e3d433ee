"""Asking Redo to send events again: for events that never arrived here.

A replay of stored events (``/replay``) cannot bring back an event this
receiver never stored (a subscription deleted for a while, a secret that
was refused). Redo can send them again: ``POST /webhooks/{id}/replay`` with
a start time. Shown only when ``REDO_API_SECRET`` is set where the
dashboard runs; first what it will do (the store's subscriptions and where
each sends), then, confirmed for one subscription, the request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigurationError, RedoHooksError
from ..redo_api import API_SECRET_ENV, RedoAPI
from .pages import Pages, blank, time_field


def configured() -> bool:
    """Whether ``REDO_API_SECRET`` is set here."""
    return bool(os.environ.get(API_SECRET_ENV))


def from_env() -> RedoAPI | None:
    """Redo's API client, if ``REDO_API_SECRET`` is set here."""
    return RedoAPI.from_env() if configured() else None


class RedoReplay:
    """``POST /replay/redo``: preview, then ask Redo to resend since a time."""

    def __init__(self, pages: Pages, api: Callable[[], RedoAPI | None]) -> None:
        self.pages = pages
        self.api = api

    async def post(self, request: Request) -> Response:
        """Preview (the store's subscriptions), or, confirmed, ask Redo for one of them."""
        fields = request.state.form
        api = self.api()
        if api is None:
            return self._page(request, 400, fields, error=f"{API_SECRET_ENV} is not set here")
        try:
            store = blank(fields.get("store"))
            since = time_field(fields.get("since"))
            if store is None or since is None:
                raise ConfigurationError("give the store id and since when Redo should resend")
            start = datetime.fromtimestamp(since, UTC)
            if fields.get("confirm") == "1":
                webhook_id = fields.get("webhook", "")
                await run_in_threadpool(api.replay_webhook, webhook_id, start)
                self.pages.act(request, "redo_replay", store=store, webhook=webhook_id, since=since)
                return self._page(request, 200, fields, asked=webhook_id, start=start, store=store)
            hooks = await run_in_threadpool(api.list_webhooks, store)
        except RedoHooksError as exc:  # the API's refusals and a bad form alike
            return self._page(request, 400, fields, error=str(exc))
        finally:
            api.close()
        return self._page(request, 200, fields, hooks=hooks, start=start, store=store)

    def _page(self, request: Request, code: int, fields: Any, **data: Any) -> Response:
        return self.pages.render(request, "redo_replay.html", code, fields=fields, **data)
