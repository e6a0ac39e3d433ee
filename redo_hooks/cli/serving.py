"""``redo-hooks serve --workers N``: several receiver processes on one port.

uvicorn starts the processes (``spawn``) and hands each the listening socket;
the kernel spreads connections over them. Each process builds its own app
from the import string, so each has its own Redis connections and its own
group commit (``store/ingest.py``). A spawned process gets its settings the
way the first one did, from the environment, plus the few the command line
gave, passed on here as ``_REDO_HOOKS_SERVE_*`` variables (not settings: the settings refuse
unknown ``REDO_HOOKS_*`` names).
"""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

from .. import logs, tracing
from ..receiver.server import GuardedProtocol, ServerLimits
from .common import load_app

_APP = "_REDO_HOOKS_SERVE_APP"
_LOG = "_REDO_HOOKS_SERVE_LOG"
_HEADER_TIMEOUT = "_REDO_HOOKS_SERVE_HEADER_TIMEOUT"


class EnvGuardedProtocol(GuardedProtocol):
    """:class:`GuardedProtocol` with the header deadline ``serve`` was given.

    uvicorn passes its configuration to spawned processes by pickling it, so
    the protocol must be importable by name rather than made on the fly.
    """

    header_timeout = float(os.environ.get(_HEADER_TIMEOUT, "10"))


def run_processes(
    app: str, workers: int, *, host: str, port: int, limits: ServerLimits, log: tuple[str, str]
) -> None:
    """Serve ``app`` from ``workers`` processes until SIGTERM/SIGINT."""
    import uvicorn

    os.environ[_APP] = app
    os.environ[_LOG] = ":".join(log)
    os.environ[_HEADER_TIMEOUT] = str(limits.header_timeout)
    options: dict[str, Any] = limits.uvicorn_options()
    options["http"] = f"{__name__}:EnvGuardedProtocol"
    uvicorn.run(
        f"{__name__}:app_factory", factory=True, workers=workers, host=host, port=port, **options
    )


def app_factory() -> Any:
    """In each spawned process: logging as configured, then the user's receiver app."""
    level, style = os.environ.get(_LOG, "INFO:auto").split(":")
    logs.configure(level, json=None if style == "auto" else style == "json")
    hooks = load_app(os.environ[_APP])
    tracing.setup(hooks.settings.otel, "redo-hooks-receiver")  # (checked by serve)
    asgi = hooks.asgi()
    gc.freeze()  # as in a single process: long-lived objects out of the collector's way
    return asgi


def serve_in_thread(app: Any, host: str, port: int) -> threading.Thread:
    """Serve ``app`` (e.g. the metrics) from a daemon thread, beside the receiver.

    uvicorn installs no signal handlers off the main thread: the receiver's
    server handles SIGTERM, and this one ends with the process.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False
    )
    thread = threading.Thread(target=uvicorn.Server(config).run, name="redo-hooks-metrics")
    thread.daemon = True
    thread.start()
    return thread
