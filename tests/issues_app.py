"""An app whose handlers fail alike while a flag is set in Redis, for the issues tests.

``ship`` fails with the warehouse's 503 (naming the return) while
``ship:down`` is set; ``refund`` parks its lane on a timeout while
``refund:down`` is set; ``audit`` never fails.
"""

from __future__ import annotations

import redis

from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


class WarehouseDown(Exception):
    """What a warehouse client raises."""


def _flag(name: str) -> bool:
    return bool(redis.Redis.from_url(hooks.settings.redis_url).exists(name))


@hooks.on("return.created", name="ship")
def ship(event: ReturnEvent) -> None:
    if _flag("ship:down"):
        raise WarehouseDown(f"warehouse API returned 503 for return '{event.return_id}'")


@hooks.on("return", name="refund", park=True)
def refund(event: ReturnEvent) -> None:
    if _flag("refund:down"):
        raise TimeoutError(f"payments timed out after {event.raw['seq']}.5 s")


@hooks.on("return", name="audit")
def audit(event: ReturnEvent) -> None:
    pass
