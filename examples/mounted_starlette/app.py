"""An existing Starlette app that mounts the receiver under /webhooks/redo.

Run it with any ASGI server, and the workers with the CLI::

    uvicorn examples.mounted_starlette.app:app
    redo-hooks worker examples.mounted_starlette.app:hooks

Redo's subscription points at ``https://<your host>/webhooks/redo/``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

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


app = Starlette(
    routes=[
        Route("/", home),
        Mount("/webhooks/redo", app=hooks.asgi()),
    ],
    # Refuse to start without a secret; close the receiver's Redis on shutdown.
    lifespan=hooks.lifespan,
)
