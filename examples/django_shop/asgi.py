"""Django's ASGI app, with the Redo receiver mounted at ``/webhooks/redo/``.

Run with any ASGI server: ``uvicorn examples.django_shop.asgi:application``.
Django's own routes answer everything else. The receiver's lifespan (its
Redis connection) is run by this small router, since Django's ASGI handler
does not take lifespan events.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")
django_app = get_asgi_application()

from .hooks import hooks  # noqa: E402 - after Django is set up

PREFIX = "/webhooks/redo"
receiver = hooks.asgi()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Send ``/webhooks/redo`` to the receiver, the rest to Django, lifespan to the receiver."""
    if scope["type"] == "lifespan":
        await receiver(scope, receive, send)
        return
    path = scope.get("path", "")
    if path == PREFIX or path.startswith(PREFIX + "/"):
        inner = dict(scope, root_path=scope.get("root_path", "") + PREFIX)
        inner["path"] = path[len(PREFIX) :] or "/"
        await receiver(inner, receive, send)
        return
    await django_app(scope, receive, send)
