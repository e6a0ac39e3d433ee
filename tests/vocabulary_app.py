"""An app for the CLI's vocabulary test: one handler for every return event."""

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="h")
def handle(event: ReturnEvent) -> None:
    """Does nothing: the test reads the run log."""
