"""structlog configuration, done once by the entry point (the CLI).

JSON lines when stderr is not a terminal, aligned key=value lines when it is.
The standard library's loggers (RQ's, uvicorn's) go through the same
processors, so every line has the same shape. Context (subject, event type,
handler, job id) is bound by the code that knows it; secrets and payloads are
never passed to a logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
]


def configure(level: str = "INFO", *, json: bool | None = None) -> None:
    """Route structlog and stdlib logging to stderr, as JSON or for a terminal."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Calls below the level are no-ops before any processor runs.
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Not cached: a module's logger must follow a later configure() (the
        # CLI and tests configure more than once per process). Costs a few µs
        # per call, on paths that log once per request or event at most.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_SHARED[1:]],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _drop_color_message,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # uvicorn's access log duplicates our request lines; its errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request at INFO; with it, a URL with a secret in its
    # query string (not ours, but a user's) would reach the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _drop_color_message(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # uvicorn attaches an ANSI-coloured copy of its message to each record.
    event.pop("color_message", None)
    return event
