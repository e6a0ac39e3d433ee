"""Handlers with every option, for `redo-hooks routes`."""

from __future__ import annotations

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks(retries=4, backoff=1.5)


@hooks.on("return.created", "return.backfill", name="ship")
def ship(event: ReturnEvent) -> None:
    """Defaults from the settings."""


@hooks.on(
    "return.updated",
    name="refund",
    retries=9,
    latest_only=True,
    park=True,
    strict=True,
    timeout=2.5,
    max_concurrency=5,
    rate_limit="120/m",
)
async def refund(event: ReturnEvent) -> None:
    """Every option set."""
