"""redo-hooks: receive Redo return webhooks and run your handlers on them.

Reliably, in order per return, at scale: see ``README.md`` and ``docs/``.
"""

from .dispatch.callbacks import Failure
from .dispatch.context import HandlerContext
from .dispatch.handlers import Handler
from .errors import ConfigurationError, GiveUp, RedoHooksError, Retry
from .hooks import RedoHooks
from .models import EVENT_NAMES, EventKind, ReturnEvent, ReturnStatus
from .settings import Settings, SettingsOverrides

#: This release (PEP 440); ``pyproject.toml`` reads it from here.
__version__ = "0.3.0"

__all__ = [
    "EVENT_NAMES",
    "ConfigurationError",
    "EventKind",
    "Failure",
    "GiveUp",
    "Handler",
    "HandlerContext",
    "RedoHooks",
    "RedoHooksError",
    "Retry",
    "ReturnEvent",
    "ReturnStatus",
    "Settings",
    "SettingsOverrides",
    "__version__",
]
