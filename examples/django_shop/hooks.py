"""The shop's Redo handlers, using the Django ORM.

A worker process calls ``django.setup()`` once, when it starts
(``@hooks.on_worker``); the handlers are sync, so they run on worker
threads, where the ORM works as in any Django code (each thread its own
database connection, closed after each call as Django closes it after a
request).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import django
from django.db import close_old_connections

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()  # REDO_HOOKS_* from the environment


@hooks.on_worker
async def django_ready() -> AsyncIterator[None]:
    """Django's settings and app registry, once per worker process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")
    django.setup()
    yield


@hooks.on("return", name="django_shop.record")
def record(event: ReturnEvent) -> None:
    """Keep the return's latest status in the shop's database."""
    # Imported once the app registry is ready (django.setup, in the worker).
    from .returns.models import ReturnRecord  # noqa: PLC0415

    try:
        status = str(event.return_.status or "")
        ReturnRecord.objects.update_or_create(
            return_id=event.return_id, defaults={"status": status}
        )
    finally:
        close_old_connections()
