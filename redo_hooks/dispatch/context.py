"""What a handler may take besides the event: its context.

``def handler(event, ctx: HandlerContext)``: which attempt this is, the
event's key, the handler's name, a logger bound to them, and what the
worker's lifespan set up (``ctx.state``). Around every call the same fields
are bound in ``structlog.contextvars``, so the handler's own structlog lines
carry them too (with ``merge_contextvars`` in its processors, as
redo-hooks' logging setup has).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic

from typing_extensions import TypeVar

from ..errors import ConfigurationError, deprecated
from .once import OnceRecords

#: What ``@hooks.on_worker`` yields: ``HandlerContext[ShopState]`` types ``ctx.state``.
State = TypeVar("State", default=Any)


@dataclass(frozen=True, slots=True)
class HandlerContext(Generic[State]):
    """One handler call: who, what and which attempt.

    Generic in what the app's ``@hooks.on_worker`` function yields, so a
    handler can say what ``ctx.state`` holds and a type checker follows it::

        @dataclass
        class Shop:
            db: Database

        @hooks.on_worker
        async def resources() -> AsyncIterator[Shop]:
            async with Database.connect() as db:
                yield Shop(db)

        @hooks.on("return.updated")
        async def sync_refund(event: ReturnEvent, ctx: HandlerContext[Shop]) -> None:
            await ctx.state.db.execute(...)

    (Plain ``HandlerContext`` is ``HandlerContext[Any]``.)
    """

    #: The handler's name (its lanes' name in Redis).
    handler: str
    #: The return's id: the handler sees this return's events in order.
    return_id: str
    #: The event's stable key (the same on every redelivery and attempt).
    event_key: str
    #: 1 on the first call for this event, 2 on the first retry, ...
    attempt: int
    #: A structlog logger bound to handler, return_id, event_key and attempt.
    log: Any
    #: What the ``@hooks.on_worker`` function yielded; None without one.
    state: State = None  # type: ignore[assignment]
    #: Where :meth:`once` records done side effects (set by the worker).
    records: OnceRecords | None = field(default=None, repr=False, compare=False)

    def idempotency_key(self, name: str) -> str:
        """A key for side effect ``name`` that is the same on every run of this event by
        this handler: pass it to an API that takes one (``Idempotency-Key``)."""
        return f"{self.event_key}:{self.handler}:{name}"

    def once(self, name: str, *, ttl: int | None = None) -> AbstractAsyncContextManager[bool]:
        """``async with ctx.once("refund") as first:``: whether side effect ``name`` is still
        to do for this event; recorded in Redis when the block ends without an exception.

        At least once, and once only after a recorded success: a crash between
        the effect and its record does it again (``dispatch/once.py``,
        docs/handlers.md). ``ttl``: seconds the record is kept (``retention``).
        """
        records = self._records()
        return records.once(records.key(self.handler, self.event_key, name), ttl)

    def once_sync(self, name: str, *, ttl: int | None = None) -> AbstractContextManager[bool]:
        """:meth:`once` for a sync handler: ``with ctx.once_sync("refund") as first:``."""
        records = self._records()
        return records.once_sync(records.key(self.handler, self.event_key, name), ttl)

    def _records(self) -> OnceRecords:
        if self.records is None:
            raise ConfigurationError(
                "ctx.once needs the worker's Redis: this context was made by hand"
            )
        return self.records

    @property
    def subject(self) -> str:
        """Deprecated: :attr:`return_id`."""
        deprecated("HandlerContext.subject", "HandlerContext.return_id")
        return self.return_id
