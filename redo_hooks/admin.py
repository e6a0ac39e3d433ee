"""The operator API, for scripts and notebooks: what the CLI and the dashboard call.

``Admin(hooks)`` reads (status, events, a return's timeline, dead letters,
issues) and acts (retries dead letters, replays), routing events to your
app's handlers; ``Admin(settings)`` reads with the settings alone. This module is
the operator API's one public home; the code lives in ``redo_hooks.ops``.
"""

from __future__ import annotations

from .ops.admin import Activity, Admin, DeadFilter, DeadPage
from .ops.dead_letters import DeadLetter
from .ops.events import EventDetail, EventFilter, EventPage, StoredEvent
from .ops.issues import Issue
from .ops.overview import HandlerSummary, WorkerProcess
from .ops.replay import Selection
from .ops.status import Status
from .store.runlog import Run

__all__ = [
    "Activity",
    "Admin",
    "DeadFilter",
    "DeadLetter",
    "DeadPage",
    "EventDetail",
    "EventFilter",
    "EventPage",
    "HandlerSummary",
    "Issue",
    "Run",
    "Selection",
    "Status",
    "StoredEvent",
    "WorkerProcess",
]
