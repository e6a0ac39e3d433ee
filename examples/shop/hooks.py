"""The example shop's handlers: what a merchant's own code looks like.

Run it with the two commands of the README, or as the Procfile does::

    redo-hooks serve examples.shop.hooks:hooks
    redo-hooks worker examples.shop.hooks:hooks
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from redo_hooks import HandlerContext, RedoHooks, ReturnEvent, ReturnStatus

log = structlog.get_logger("shop")

hooks = RedoHooks()


@dataclass
class Books:
    """The shop's books, as a worker process holds them (a DB pool in real life)."""

    refunds: dict[str, str | None] = field(default_factory=dict)


@hooks.on_worker
async def resources() -> AsyncIterator[Books]:
    """Opened once per worker process; handlers see it as ``ctx.state``."""
    yield Books()


@hooks.on("return.created", "return.backfill")
def notify_warehouse(event: ReturnEvent) -> None:
    """Tell the warehouse which items are coming back."""
    items = event.return_.items or []
    log.info(
        "warehouse_notified",
        return_id=event.return_id,
        order=event.return_.order.name if event.return_.order else None,
        items=sum(int(item.quantity or 0) for item in items),
    )


@hooks.on("return.updated", retries=5, backoff=5)
async def sync_refund(event: ReturnEvent, ctx: HandlerContext[Books]) -> None:
    """Mirror the refund total into the shop's books once the return completes."""
    if event.return_.status != ReturnStatus.COMPLETE:
        log.info("return_progressed", return_id=event.return_id, status=event.return_.status)
        return
    totals = event.return_.totals
    refund = totals.refund.amount if totals and totals.refund else None
    ctx.state.refunds[event.return_id] = str(refund.amount) if refund else None
    log.info(
        "refund_recorded",
        return_id=event.return_id,
        amount=str(refund.amount) if refund else None,
        currency=refund.currency if refund else None,
    )
