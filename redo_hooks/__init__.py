"""redo-hooks: receive Redo return webhooks and run your handlers on them.

Reliably, in order per return, at scale: see ``README.md`` and ``docs/``.
"""

from .dispatch.handlers import EVENT_NAMES, Handler
from .errors import ConfigurationError, RedoHooksError
from .hooks import RedoHooks
from .models import EventKind, ReturnEvent, ReturnStatus
from .settings import Settings

#: This release (PEP 440); ``pyproject.toml`` reads it from here.
__version__ = "0.2.0"

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
    "__version__",
]
