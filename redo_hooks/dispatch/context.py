"""What a handler may take besides the event: its context.

``def handler(event, ctx: HandlerContext)``: which attempt this is, the
event's key, the handler's name, a logger bound to them, and what the
worker's lifespan set up (``ctx.state``). Around every call the same fields
are bound in ``structlog.contextvars``, so the handler's own structlog lines
carry them too (with ``merge_contextvars`` in its processors, as
redo-hooks' logging setup has).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from typing_extensions import TypeVar

from ..errors import deprecated

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

    @property
    def subject(self) -> str:
        """Deprecated: :attr:`return_id`."""
        deprecated("HandlerContext.subject", "HandlerContext.return_id")
        return self.return_id
