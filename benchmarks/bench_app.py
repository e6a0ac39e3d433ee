"""The app the benchmarks run: no-op handlers, settings from the environment."""

from __future__ import annotations

import orjson

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return", name="bench.noop")
def noop(event: ReturnEvent) -> None:
    """Does nothing: the benchmarks measure the framework."""


def noop_job(body: bytes) -> None:
    """The stock-RQ baseline's job: parse the event as a handler would, then nothing."""
    ReturnEvent.from_raw(orjson.loads(body))
