"""Logging: structlog, configured once by the entry point (the CLI) — or by your app.

:func:`configure` gives JSON lines when stderr is not a terminal, aligned
key=value lines when it is; the standard library's loggers (RQ's, uvicorn's)
go through the same processors, so every line has the same shape. The CLI
calls it; an app that mounts the receiver may call it too, or not:

* structlog configured (by :func:`configure` or by the app itself):
  redo-hooks logs through it, with the app's processors and level;
* structlog not configured: redo-hooks logs through the standard library's
  ``logging``, under loggers named ``redo_hooks.*``, so the app's logging
  set-up decides what is shown (by default: warnings and errors, on stderr),
  and structlog's own default — print everything, DEBUG included — never
  applies.

Context (return_id, event type, handler, job id) is bound by the code that
knows it; a line written inside an OpenTelemetry span also carries its
``trace_id`` and ``span_id``; secrets and payloads are never passed to a logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

try:  # the optional extra: trace ids on the lines written inside a span
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised by an environment without it
    _trace = None  # type: ignore[assignment]


def add_trace_ids(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """``trace_id`` and ``span_id`` on a line written inside a recording span (OpenTelemetry),
    so a log line and its trace find each other."""
    if _trace is not None:
        context = _trace.get_current_span().get_span_context()
        if context.is_valid:
            event.setdefault("trace_id", format(context.trace_id, "032x"))
            event.setdefault("span_id", format(context.span_id, "016x"))
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
]


def configure(level: str = "INFO", *, json: bool | None = None) -> None:
    """Route structlog and stdlib logging to stderr, as JSON or for a terminal.

    ``level``: ``"DEBUG"``, ``"INFO"``, ``"WARNING"`` or ``"ERROR"``; ``json``:
    ``None`` picks JSON unless stderr is a terminal. Replaces the root
    logger's handlers: call it once, at start-up, from the program's entry
    point (an app's ``main``, or before creating an ASGI app that mounts the
    receiver) — not from a library.
    """
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    global _configured
    wrapper = structlog.make_filtering_bound_logger(numeric)
    _configured = (wrapper, numeric)
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Calls below the level are no-ops before any processor runs.
        wrapper_class=wrapper,
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
    # httpx and httpx2 log every request at INFO; with it, a URL with a
    # secret in its query string (not ours, but a user's) would reach the logs.
    for client in ("httpx", "httpx2"):
        logging.getLogger(client).setLevel(logging.WARNING)


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _drop_color_message(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # uvicorn attaches an ANSI-coloured copy of its message to each record.
    event.pop("color_message", None)
    return event


#: What :func:`configure` set last: its wrapper class and level.
_configured: tuple[Any, int] | None = None


def debug_enabled(name: str) -> bool:
    """Whether a DEBUG line of logger ``name`` would be emitted, cheaply.

    For per-event lines on hot paths: a filtered-out call through structlog's
    lazy proxy still builds its arguments and walks the proxy, many times the
    cost of this check (``benchmarks/README.md``). Under a structlog set-up other than
    :func:`configure`'s, it answers ``True`` (that set-up decides).
    """
    if not structlog.is_configured():
        return logging.getLogger(name).isEnabledFor(logging.DEBUG)
    if _configured is not None and structlog.get_config()["wrapper_class"] is _configured[0]:
        return _configured[1] <= logging.DEBUG
    return True


def get_logger(name: str) -> Any:
    """The logger redo-hooks' modules use: structlog's if configured, else stdlib's.

    ``log.info("event", key=value)`` and ``log.bind(key=value)`` work either way.
    """
    return _Logger(name, {})


class _Logger:
    """A structlog logger while structlog is configured; a stdlib one otherwise."""

    __slots__ = ("_context", "_name", "_structlog")

    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self._name = name
        self._context = context
        proxy = structlog.get_logger(name)
        # Lazy: it follows a configure() made later.
        self._structlog = proxy.bind(**context) if context else proxy

    def bind(self, **values: Any) -> _Logger:
        """A logger that adds ``values`` to every line."""
        return _Logger(self._name, {**self._context, **values})

    def __getattr__(self, method: str) -> Any:
        if structlog.is_configured():
            return getattr(self._structlog, method)
        return _StdlibCall(logging.getLogger(self._name), method, self._context)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _StdlibCall:
    """``log.info("event", k=v)`` as ``logging``'s ``event k=v`` record (unconfigured structlog)."""

    __slots__ = ("_context", "_level", "_logger", "_method")

    def __init__(self, logger: logging.Logger, method: str, context: dict[str, Any]) -> None:
        if method not in _LEVELS:
            raise AttributeError(method)
        self._logger = logger
        self._method = method
        self._level = _LEVELS[method]
        self._context = context

    def __call__(self, event: str, *args: Any, **values: Any) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        exc_info = values.pop("exc_info", self._method == "exception")
        fields = {**self._context, **values}
        text = " ".join(
            [event % args if args else event, *(f"{k}={v!r}" for k, v in fields.items())]
        )
        self._logger.log(self._level, "%s", text, exc_info=exc_info)
