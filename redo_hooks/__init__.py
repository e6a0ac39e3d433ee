"""redo-hooks: receive Redo return webhooks and run your handlers on them.

Reliably, in order per return, at scale: see ``README.md`` and ``docs/``.
"""

from .dispatch.handlers import EVENT_NAMES, Handler
from .errors import ConfigurationError, RedoHooksError
from .hooks import RedoHooks
from .models import EventKind, ReturnEvent, ReturnStatus
from .settings import Settings

__all__ = [
    "EVENT_NAMES",
    "ConfigurationError",
    "EventKind",
    "Handler",
    "RedoHooks",
    "RedoHooksError",
    "ReturnEvent",
    "ReturnStatus",
    "Settings",
]
