"""The shop's Redo handlers: each runs inside the Flask app's context.

A handler runs on a worker thread, where no Flask context is pushed; the
``in_flask`` decorator pushes one around each call, so ``current_app``,
``g`` and the app's extensions work as they do in a view. The app is
created once per worker process, in ``@hooks.on_worker``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

from flask import Flask, current_app

from redo_hooks import HandlerContext, RedoHooks, ReturnEvent

from .app import create_app, db

hooks = RedoHooks()  # REDO_HOOKS_* from the environment


@hooks.on_worker
async def flask_app() -> AsyncIterator[Flask]:
    """One Flask app per worker process, for every handler: ``ctx.state``."""
    yield create_app(DATABASE="shop.sqlite3")


def in_flask(handler: Callable[[ReturnEvent, HandlerContext[Flask]], Any]) -> Any:
    """Run ``handler`` inside its worker's Flask app context."""

    @functools.wraps(handler)
    def call(event: ReturnEvent, ctx: HandlerContext[Flask]) -> Any:
        with ctx.state.app_context():
            return handler(event, ctx)

    return call


@hooks.on("return.created", name="flask_shop.restock")
@in_flask
def restock(event: ReturnEvent, ctx: HandlerContext[Flask]) -> None:
    """Record the return for restocking, in the app's database, for its warehouse."""
    connection = db()
    connection.execute(
        "INSERT INTO restocks VALUES (?, ?)", (event.return_id, current_app.config["WAREHOUSE"])
    )
    connection.commit()
