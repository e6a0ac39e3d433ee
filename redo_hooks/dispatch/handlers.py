"""Handlers and routing: which functions run for which event.

``@hooks.on(...)`` is sugar over :meth:`Registry.add`. Mistakes (an unknown
event name, a function that cannot take the event, a duplicate name) raise
``ConfigurationError`` at registration, with the valid choices in the message.
Handlers for one event run in registration order of their lanes, each in its
own lane: one handler's failure never re-runs another.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, Unpack

from ..errors import ConfigurationError, deprecated
from ..models import EVENT_NAMES, ReturnEvent
from .context import HandlerContext

#: Every return event, whatever its name: types Redo adds later included.
EVERY_RETURN_EVENT = "return"
#: What a handler can subscribe to: an event's name, or every return event.
SUBSCRIBABLE: tuple[str, ...] = (*EVENT_NAMES, EVERY_RETURN_EVENT)

# No ':' in handler names: lane keys are <prefix><handler>:<return id>, and a
# return id may itself contain ':'.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")

#: What a handler is: a plain or ``async`` function of the event.
HandlerFunc = (
    Callable[[ReturnEvent], None]
    | Callable[[ReturnEvent], Awaitable[None]]
    | Callable[[ReturnEvent, HandlerContext[Any]], None]
    | Callable[[ReturnEvent, HandlerContext[Any]], Awaitable[None]]
)
H = TypeVar("H", bound=HandlerFunc)


class HandlerOptions(TypedDict, total=False):
    """The options of ``@hooks.on(...)`` and ``add(...)``, defined once.

    ``name`` identifies the handler's lanes in Redis (default
    ``module.qualname``), so it must stay the same across deploys.
    ``retries`` and ``backoff`` (seconds, the base of the exponential backoff)
    override ``Settings.retries``/``Settings.backoff`` for this handler.
    ``latest_only`` skips (counts and logs) an event whose ``return.updatedAt``
    is older than the newest this handler already ran for that return: each
    event carries the whole return, so an older snapshot is noise for handlers
    that mirror the latest state. ``park``: when an event exhausts its
    retries, hold that return's later events for this handler until an
    operator retries or drops the dead letter, instead of moving on.
    ``timeout`` (seconds; default ``Settings.job_timeout``) fails the attempt
    of a call that takes longer: an async call is cancelled; a thread cannot
    be interrupted, so the timeout is reported at once and the lane waits for
    the thread to return before its next attempt or event (never two at
    once). ``max_threads`` (sync handlers): threads of its own, instead of an
    even share of ``Settings.sync_threads``, so one slow handler never takes
    the threads of another. ``max_concurrency``:
    at most that many runs at once across every worker; ``rate_limit``
    (``"120/m"``, ``"5/s"``, ``"1000/h"``): at most that many starts per
    window, across every worker. A lane that must wait for either is handed
    on to run later instead of holding a worker. ``strict``: dead-letter an
    event with ``schema_errors`` (a value that did not fit the models) as
    ``invalid_event`` instead of calling the handler with those values read
    as ``None``.
    """

    name: str | None
    retries: int | None
    backoff: float | None
    latest_only: bool
    park: bool
    timeout: float | None
    max_threads: int | None
    max_concurrency: int | None
    rate_limit: str | None
    strict: bool


_OPTIONS = frozenset(HandlerOptions.__annotations__)


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered handler: its stable name, function and subscriptions.

    The name identifies the handler's lanes in Redis, so it must stay the same
    across deploys; it defaults to ``module.qualname``.
    """

    name: str
    func: Callable[..., Any]
    events: tuple[str, ...]
    is_async: bool
    retries: int | None
    backoff: float | None = None
    latest_only: bool = False
    park: bool = False
    timeout: float | None = None
    #: Threads of this (sync) handler's own; None: a fair share of ``sync_threads``.
    max_threads: int | None = None
    max_concurrency: int | None = None
    #: ``rate_limit`` parsed: (starts, window in seconds).
    rate: tuple[int, float] | None = None
    #: Whether the function takes a second argument, the :class:`HandlerContext`.
    takes_context: bool = False
    #: Dead-letter off-schema events rather than run on them (``strict=True``).
    strict: bool = False

    def wants(self, event_type: str) -> bool:
        """Whether an event of this ``type`` (e.g. ``"created"``) is routed here."""
        return EVERY_RETURN_EVENT in self.events or f"return.{event_type}" in self.events


class Registry:
    """The routing table. ``repr()`` prints it."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        #: ``@hooks.on_failure`` callbacks, in registration order.
        self.failure_callbacks: list[Any] = []

    def add(self, func: HandlerFunc, *events: str, **options: Unpack[HandlerOptions]) -> Handler:
        """Register ``func`` for ``events``; return the :class:`Handler`.

        ``events``: names from :data:`~redo_hooks.EVENT_NAMES`, or ``"return"``
        for every return event. The options are
        :class:`HandlerOptions`; an unknown one raises ``ConfigurationError``.
        """
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigurationError(
                f"{_describe(func)}: unknown handler option(s) {', '.join(sorted(unknown))}; "
                f"valid options are {', '.join(sorted(_OPTIONS))}"
            )
        name = options.get("name")
        retries = options.get("retries")
        backoff = options.get("backoff")
        events = _subscribed(func, events)
        takes_context = _check_signature(func)
        timeout = options.get("timeout")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConfigurationError(f"{_describe(func)}: timeout must be seconds > 0")
        max_threads = options.get("max_threads")
        if max_threads is not None:
            if not isinstance(max_threads, int) or isinstance(max_threads, bool) or max_threads < 1:
                raise ConfigurationError(f"{_describe(func)}: max_threads must be an int >= 1")
            if inspect.iscoroutinefunction(func):
                raise ConfigurationError(
                    f"{_describe(func)}: max_threads= is for sync handlers (their thread "
                    "share); an async handler runs on the loop (Settings.async_concurrency)"
                )
        if retries is not None and (not isinstance(retries, int) or retries < 0):
            raise ConfigurationError(f"{_describe(func)}: retries must be an int >= 0")
        if backoff is not None and (not isinstance(backoff, int | float) or backoff < 0):
            raise ConfigurationError(f"{_describe(func)}: backoff must be seconds >= 0")
        handler_name = name or f"{func.__module__}.{func.__qualname__}"
        if not _NAME.match(handler_name):
            raise ConfigurationError(
                f"handler name {handler_name!r} must match {_NAME.pattern}; pass name='...'"
            )
        if handler_name in self._handlers:
            raise ConfigurationError(
                f"a handler named {handler_name!r} is already registered; pass name='...'"
            )
        handler = Handler(
            name=handler_name,
            func=func,
            events=events,
            is_async=inspect.iscoroutinefunction(func),
            retries=retries,
            backoff=None if backoff is None else float(backoff),
            latest_only=bool(options.get("latest_only", False)),
            park=bool(options.get("park", False)),
            timeout=None if timeout is None else float(timeout),
            max_threads=max_threads,
            takes_context=takes_context,
            max_concurrency=_max_concurrency(func, options.get("max_concurrency")),
            rate=_rate(func, options.get("rate_limit")),
            strict=bool(options.get("strict", False)),
        )
        self._handlers[handler_name] = handler
        return handler

    def on(self, *events: str, **options: Unpack[HandlerOptions]) -> Callable[[H], H]:
        """Decorator form of :meth:`add`; returns the function unchanged."""

        def decorate(func: H) -> H:
            self.add(func, *events, **options)
            return func

        return decorate

    def for_type(self, event_type: str) -> list[Handler]:
        """The handlers an event of this ``type`` goes to, in registration order."""
        return [h for h in self._handlers.values() if h.wants(event_type)]

    def get(self, name: str) -> Handler | None:
        """The handler registered under ``name``, if any."""
        return self._handlers.get(name)

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)

    def __repr__(self) -> str:
        if not self._handlers:
            return "<Registry: no handlers>"
        width = max(len(", ".join(h.events)) for h in self._handlers.values())
        lines = [f"<Registry: {len(self._handlers)} handler(s)"]
        for h in self._handlers.values():
            kind = "async" if h.is_async else "sync"
            lines.append(f"  {', '.join(h.events):<{width}}  ->  {h.name} ({kind})")
        return "\n".join(lines) + ">"


def _subscribed(func: HandlerFunc, events: tuple[str, ...]) -> tuple[str, ...]:
    """``events`` checked, each once; ``ConfigurationError`` listing the valid ones."""
    if not events:
        raise ConfigurationError(
            f"{_describe(func)}: name at least one event, one of {', '.join(SUBSCRIBABLE)}"
        )
    if "*" in events:  # 0.2 spelled "every return event" two ways
        deprecated('subscribing to "*"', '"return" (every return event)', stacklevel=5)
        events = tuple(EVERY_RETURN_EVENT if event == "*" else event for event in events)
    for event in events:
        if event not in SUBSCRIBABLE:
            raise ConfigurationError(
                f"{_describe(func)}: unknown event {event!r}; "
                f"valid events are {', '.join(SUBSCRIBABLE)}"
            )
    return tuple(dict.fromkeys(events))


def _describe(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", repr(func))


_WINDOWS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def _max_concurrency(func: Callable[..., Any], value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{_describe(func)}: max_concurrency must be an int >= 1")
    return value


def _rate(func: Callable[..., Any], value: object) -> tuple[int, float] | None:
    """``"120/m"`` -> (120, 60.0)."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*([smh])\s*", value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"{_describe(func)}: rate_limit must read like '120/m' (starts per s, m or h), "
            f"not {value!r}"
        )
    return int(match.group(1)), _WINDOWS[match.group(2)]


def _check_signature(func: Callable[..., Any]) -> bool:
    """Whether ``func`` takes the context too; ``ConfigurationError`` if it takes neither form."""
    if not callable(func):
        raise ConfigurationError(f"{func!r} is not callable")
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False  # builtins without a signature: let them be
    for arguments, takes_context in (((object(), object()), True), ((object(),), False)):
        try:
            signature.bind(*arguments)
        except TypeError:
            continue
        return takes_context
    raise ConfigurationError(
        f"{_describe(func)}{signature}: a handler takes the event, and optionally the "
        "context: def handler(event: ReturnEvent, ctx: HandlerContext) -> None"
    )
