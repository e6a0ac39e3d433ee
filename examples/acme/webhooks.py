"""Redo webhook handlers, inside the app's own package, calling the app's own code."""

from __future__ import annotations

from decimal import Decimal

from redo_hooks import RedoHooks, ReturnEvent, ReturnStatus

from .orders import ledger

hooks = RedoHooks()  # REDO_HOOKS_* from the environment, as the rest of the app's settings


@hooks.on("return.created", "return.backfill")
def expect_items(event: ReturnEvent) -> None:
    """Note the return's items as on their way."""
    ledger.expect_items(event.return_id)


@hooks.on("return.updated", latest_only=True)
def record_refund(event: ReturnEvent) -> None:
    """Record the refund once the return is complete (latest snapshot only)."""
    if event.return_.status != ReturnStatus.COMPLETE:
        return
    totals = event.return_.totals
    refund = totals.refund.amount if totals and totals.refund else None
    amount = refund.amount if refund and refund.amount is not None else Decimal(0)
    ledger.record_refund(event.return_id, amount)
