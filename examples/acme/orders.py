"""The app's own domain code (an in-memory stand-in for its database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Ledger:
    """Refunds recorded per return, and returns awaiting items."""

    refunds: dict[str, Decimal] = field(default_factory=dict)
    awaiting: set[str] = field(default_factory=set)

    def expect_items(self, return_id: str) -> None:
        """A return was opened: its items are on their way."""
        self.awaiting.add(return_id)

    def record_refund(self, return_id: str, amount: Decimal) -> None:
        """A return completed with this refund (idempotent per return)."""
        self.awaiting.discard(return_id)
        self.refunds[return_id] = amount


ledger = Ledger()
