"""The operator API, for scripts and notebooks: see ``redo_hooks.ops.admin``.

``Admin(settings)`` reads (status, events, a return's timeline, dead
letters) with the settings alone; ``hooks.admin()`` can also retry dead
letters and replay, which route events to the app's handlers.
"""

from __future__ import annotations

from .ops.admin import Activity, Admin, DeadFilter, DeadPage
from .ops.dead_letters import DeadLetter
from .ops.events import EventDetail, EventFilter, EventPage, StoredEvent
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
    "Run",
    "Selection",
    "Status",
    "StoredEvent",
]
