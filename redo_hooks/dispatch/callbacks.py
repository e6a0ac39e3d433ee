"""Failure callbacks: your functions, called when a handler fails.

Registered with ``@hooks.on_failure``; called in the worker process when a
handler's call runs over its time limit, when an attempt fails (a retry is
scheduled), when an event is dead-lettered, and when a lane is parked. They
run beside the lanes, never in them: the event's outcome is decided and
written first, a callback that raises is logged, and one slower than
``failure_callback_timeout`` is left behind (an async one cancelled) —
neither holds the lane or changes what happens to the event. Page someone,
post to a chat, report to Sentry.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import deprecated
from ..logs import get_logger
from ..models import ReturnEvent

log = get_logger("redo_hooks.dispatch.callbacks")

#: When a callback is called.
FailureKind = Literal["timed_out", "attempt_failed", "dead_lettered", "parked"]


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failure callback receives.

    ``kind``: ``"timed_out"`` (the call ran over its time limit: said at
    once, while the lane still waits for the call's work to end; the attempt
    then fails as usual), ``"attempt_failed"`` (a retry is scheduled in ``retry_in``
    seconds), ``"dead_lettered"`` (the return moves on) or ``"parked"`` (the
    return waits for an operator). ``error`` is the handler's exception
    (``None`` when the event itself could not be handed to the handler, e.g.
    off-schema for a ``strict`` handler: then ``error_text`` says why, and
    ``event`` may be ``None``). ``attempt`` counts from 1.
    """

    kind: FailureKind
    handler: str
    return_id: str
    event_key: str
    event: ReturnEvent | None
    error: BaseException | None
    error_text: str
    attempt: int
    retry_in: float | None = None
    dead_letter_id: str | None = None

    @property
    def subject(self) -> str:
        """Deprecated: :attr:`return_id`."""
        deprecated("Failure.subject", "Failure.return_id")
        return self.return_id


#: A failure callback: a plain or ``async`` function of a :class:`Failure`.
FailureCallback = Callable[[Failure], None] | Callable[[Failure], Awaitable[None]]


class FailureNotifier:
    """Runs the registered callbacks for each failure as tasks beside the lanes."""

    def __init__(
        self,
        callbacks: list[FailureCallback],
        loop: asyncio.AbstractEventLoop,
        threads: Executor,
        timeout: float,
    ) -> None:
        self.callbacks = callbacks
        self.loop = loop
        self.threads = threads
        self.timeout = timeout
        self.pending: set[asyncio.Future[None]] = set()

    def notify(self, failure: Failure) -> None:
        """Start each callback on ``failure`` on the worker's loop; return at once."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._start(failure)
        else:
            self.loop.call_soon_threadsafe(self._start, failure)

    def _start(self, failure: Failure) -> None:
        for callback in self.callbacks:
            task = self.loop.create_task(self._call(callback, failure))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _call(self, callback: FailureCallback, failure: Failure) -> None:
        name = getattr(callback, "__qualname__", repr(callback))
        try:
            async with asyncio.timeout(self.timeout):
                if inspect.iscoroutinefunction(callback):
                    await callback(failure)
                else:
                    await self.loop.run_in_executor(self.threads, callback, failure)
        except TimeoutError:
            log.warning(
                "failure_callback_timed_out",
                callback=name,
                handler=failure.handler,
                timeout=self.timeout,
            )
        except Exception as exc:
            log.exception(
                "failure_callback_failed",
                callback=name,
                handler=failure.handler,
                error=f"{type(exc).__name__}: {exc}",
            )

    async def settle(self) -> None:
        """Wait for the callbacks still running (each is bounded by the timeout)."""
        if self.pending:
            await asyncio.wait(list(self.pending))


def check_callback(func: Any) -> None:
    """Raise ``TypeError`` unless ``func`` can be called with one argument."""
    if not callable(func):
        raise TypeError(f"{func!r} is not callable")
    try:
        inspect.signature(func).bind(None)
    except TypeError:
        raise TypeError(
            f"{getattr(func, '__qualname__', func)!r} must take one argument, the Failure"
        ) from None
    except ValueError:  # no signature (a builtin): trust it
        return
