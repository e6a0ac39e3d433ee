"""An existing Starlette app that mounts the receiver under /webhooks/redo.

Run it with any ASGI server, and the workers with the CLI::

    uvicorn examples.mounted_starlette.app:app
    redo-hooks worker examples.mounted_starlette.app:hooks

Redo's subscription points at ``https://<your host>/webhooks/redo`` (the
trailing slash is optional).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()  # REDO_HOOKS_SECRETS, REDO_HOOKS_REDIS_URL from the environment
restocked: list[str] = []


@hooks.on("return.created")
def reserve_restock(event: ReturnEvent) -> None:
    """Reserve shelf space for what is coming back."""
    restocked.append(event.return_id)


async def home(request: Request) -> JSONResponse:
    """The app's own endpoint, untouched by the mount."""
    return JSONResponse({"app": "shop"})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """The app's own lifespan, with the receiver's inside it."""
    # Refuses to start without a secret; closes the receiver's Redis on shutdown.
    async with hooks.lifespan(app):
        app.state.started = True  # the app's own start-up
        yield


app = Starlette(
    routes=[
        Route("/", home),
        hooks.mount("/webhooks/redo"),
    ],
    lifespan=lifespan,
)
