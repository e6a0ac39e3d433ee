"""What lane jobs need in a worker process: settings, routing, Redis, scripts.

Built once by the worker (``dispatch/worker.py``) and bound with
:func:`redo_hooks.dispatch.lanes.bind`, since RQ calls job functions by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis import Redis
from redis.commands.core import Script
from rq import Queue

from ..models import ReturnEvent
from ..settings import Settings
from ..store import lua
from ..store.keys import Keys
from .counters import WorkerMetrics
from .handlers import Registry


class App(Protocol):
    """What the worker needs of the user's ``RedoHooks``: its handlers and settings."""

    @property
    def registry(self) -> Registry: ...

    @property
    def settings(self) -> Settings: ...


@dataclass
class Runtime:
    """What lane jobs need in a worker process, built once by the worker."""

    registry: Registry
    settings: Settings
    connection: Redis
    queue: Queue
    keys: Keys = field(init=False)
    #: Set when the worker was asked to stop: jobs hand their lanes on after
    #: the event in hand, so a rolling restart waits for one handler call only.
    stopping: bool = field(init=False, default=False)
    loop: asyncio.AbstractEventLoop = field(init=False)
    metrics: WorkerMetrics = field(init=False)
    #: Called after each handler call with (handler name, event, outcome,
    #: exception or None); ``redo_hooks.testing`` records what ran with it.
    observer: Callable[[str, ReturnEvent, str, BaseException | None], None] | None = None
    _scripts: dict[str, Script] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.key_prefix)
        self.metrics = WorkerMetrics(self.keys.metrics)
        self.loop = asyncio.new_event_loop()
        self._scripts = {
            name: self.connection.register_script(lua.source(name))
            for name in (
                "job_claim",
                "lane_next",
                "lane_fail",
                "lane_dead",
                "lane_park",
                "lanes_transfer",
            )
        }

    def script(self, name: str) -> Script:
        """A registered Lua script."""
        return self._scripts[name]
