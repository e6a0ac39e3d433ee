"""The app ``benchmarks/operators.py`` points ``redo-hooks status`` at: two no-op handlers."""

from __future__ import annotations

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="ops.a")
def handler_a(event: ReturnEvent) -> None:
    """Does nothing."""


@hooks.on("return", name="ops.b")
def handler_b(event: ReturnEvent) -> None:
    """Does nothing."""
