"""The web side's one atomic Redis step: dedupe + store + route (``lua/ingest.lua``).

Requests are *group-committed*: while one ``EVALSHA`` is in flight, the events
of the requests that arrive meanwhile wait in a list and go together in the
next call. Each request still gets its answer only after Redis has replied for
its own event, so the 2xx still means "stored" (guarantee 1) — but one round
trip and one client-side command encoding serve many requests, which is what
lets ingest keep up with parsing: redis-py's asyncio client costs more CPU
per call inside uvicorn than parsing a body does (``benchmarks/README.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ..errors import StoreUnavailable
from ..logs import get_logger
from ..settings import Settings
from . import lua, runlog
from .events import Incoming, pack_body
from .keys import Keys
from .replies import as_bytes
from .rq_internals import (
    JOB_KEY_PREFIX,
    QUEUES_KEY,
    LaneJobTemplate,
    new_job_id,
    queue_key,
    rq_timestamp,
)

log = get_logger("redo_hooks.store.ingest")


@dataclass(frozen=True, slots=True)
class Routed:
    """An incoming event and the names of the handlers it goes to."""

    incoming: Incoming
    handlers: Sequence[str]
    #: Store and route even if already seen (a dead-letter retry).
    force: bool = False


#: Bodies in one ingest call: about this many bytes (at least one event).
#: The call sits in Redis' memory twice while it runs (its query buffer and
#: the script's arguments), on top of what is stored: room above
#: ``memory_high_water`` must hold it (docs/operations.md, sizing).
BATCH_BYTES = 512 * 1024

#: Field of ``<p>:metrics``: retained events dropped to make room for new ones.
RETENTION_YIELDED = "retention_yielded|"


class IngestPlan:
    """Builds the ``KEYS``/``ARGV`` of one ``ingest`` call; pure, no I/O."""

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self._settings = settings
        self._keys = keys
        # Job.create needs a connection object; it never uses it here.
        self._stub = Redis()
        self._templates: dict[str, LaneJobTemplate] = {}
        self._head_keys = [
            queue_key(settings.queue),
            QUEUES_KEY,
            keys.events,
            keys.waiting,
            keys.waiting_events,
            keys.metrics,
        ]

    def build(self, batch: Sequence[Routed]) -> tuple[list[Any], list[Any]]:
        """``(keys, args)`` for ``ingest.lua``.

        The events' arguments are bytes already, and each stored body a
        ``memoryview``: redis-py passes bytes through instead of encoding them,
        and sends a memoryview as a chunk of its own instead of copying it into
        the command's growing buffer (``benchmarks/README.md`` has the
        packing cost per event).
        """
        s, k = self._settings, self._keys
        index: dict[str, int] = {}
        templates: list[Any] = []
        events: list[Any] = []
        for routed in batch:
            inc = routed.incoming
            events += [
                inc.key.encode(),
                memoryview(pack_body(inc.body)),
                inc.type.encode(),
                inc.subject.encode(),
                (inc.store or "").encode(),
                inc.traceparent.encode(),
                inc.order_id.encode(),
                inc.order_name.encode(),
                b"1" if routed.force else b"0",
                b"%d" % len(routed.handlers),
            ]
            for handler in routed.handlers:
                if handler not in index:
                    index[handler] = len(index) + 1
                    fields = self._template(handler).fields
                    templates += [handler, new_job_id(), len(fields), *fields]
                events.append(b"%d" % index[handler])
        args: list[Any] = [
            s.dedupe_ttl,
            s.retention,
            s.memory_high_water,
            rq_timestamp(),
            len(batch),
            len(index),
            s.lanes_per_job,
            k.seen_prefix,
            k.event_prefix,
            k.lane_prefix,
            k.lane_state_prefix,
            k.open_prefix,
            k.job_lanes_prefix,
            JOB_KEY_PREFIX,
            s.max_waiting_events,
            RETENTION_YIELDED,
            k.base,
            runlog.bucket_seconds(s.retention),
            k.body_prefix,
            int(s.retention < s.dedupe_ttl),
            *templates,
            *events,
        ]
        return list(self._head_keys), args

    def _template(self, handler: str) -> LaneJobTemplate:
        template = self._templates.get(handler)
        if template is None:
            template = LaneJobTemplate(self._stub, self._settings.queue, handler)
            self._templates[handler] = template
        return template


#: ``ingest.lua``'s character for one event, as the code :func:`outcome` reads.
_RESULTS = {ord("1"): 1, ord("0"): 0, ord("b"): -1, ord("m"): -2}


def read_reply(reply: Any) -> tuple[list[int], int]:
    """``ingest.lua``'s reply: each event's result code, and how many retained events yielded.

    Codes: 1 stored, 0 a duplicate, -1 refused (backlog full), -2 refused
    (Redis memory at the high-water mark); :func:`outcome` reads one.
    """
    codes, _, yielded = as_bytes(reply).partition(b" ")
    return [_RESULTS[code] for code in codes], int(yielded)


def outcome(result: Any, settings: Settings) -> bool:
    """One event's ``ingest.lua`` result: ``True`` stored, ``False`` a duplicate.

    Raises ``StoreUnavailable`` for an event the script refused (nothing
    of it was written): the backlog or Redis' memory is at its limit.
    """
    code = int(result)
    if code == -1:
        raise StoreUnavailable(
            f"over {settings.max_waiting_events} events are waiting for handlers; retry later",
            reason="backlog_full",
        )
    if code == -2:
        raise StoreUnavailable(
            f"Redis memory is at {settings.memory_high_water:.0%} of maxmemory, where the "
            "receiver stops to leave room for the workers; retry later",
            reason="redis_memory_high",
        )
    return code == 1


class Ingestor:
    """Writes routed events to Redis in group-committed batches.

    One per process and event loop; created lazily by the ASGI app.
    """

    def __init__(self, redis: AsyncRedis, settings: Settings, keys: Keys) -> None:
        self._redis = redis
        self._settings = settings
        self._plan = IngestPlan(settings, keys)
        self._script = redis.register_script(lua.source("ingest"))
        self._pending: list[tuple[Routed, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, routed: Routed) -> bool:
        """Store one event; ``True`` if new, ``False`` if a duplicate.

        Raises ``StoreUnavailable`` when Redis did not confirm the write.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((routed, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    def _next_batch(self) -> list[tuple[Routed, asyncio.Future[bool]]]:
        """The oldest pending events, up to ``ingest_batch`` and about ``BATCH_BYTES``."""
        size, count = 0, 0
        for routed, _ in self._pending[: self._settings.ingest_batch]:
            if count and size + len(routed.incoming.body) > BATCH_BYTES:
                break
            size += len(routed.incoming.body)
            count += 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    async def _flush(self) -> None:
        while self._pending:
            batch = self._next_batch()
            try:
                keys, args = self._plan.build([routed for routed, _ in batch])
                async with asyncio.timeout(self._settings.redis_timeout):
                    reply = await self._script(keys=keys, args=args)
                if self._settings.min_replicas_ack and not await self._replicated():
                    self._fail(
                        batch,
                        f"fewer than {self._settings.min_replicas_ack} replica(s) confirmed "
                        "the write in time",
                        reason="not_replicated",
                    )
                    continue
            except (RedisError, OSError, TimeoutError) as exc:
                self._fail(batch, f"Redis did not confirm the write ({type(exc).__name__})")
                continue
            except Exception:  # a bug here must not leave requests hanging
                log.exception("ingest_failed")
                self._fail(batch, "the event could not be stored")
                continue
            results, yielded = read_reply(reply)
            if yielded:
                log.warning(
                    "retention_yielded_to_memory",
                    events=yielded,
                    detail="the oldest processed events kept for replay were dropped",
                )
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                try:
                    future.set_result(outcome(result, self._settings))
                except StoreUnavailable as refused:
                    future.set_exception(refused)

    async def _replicated(self) -> bool:
        """``WAIT``: did ``min_replicas_ack`` replicas confirm every write so far?

        An unconfirmed event is still on the primary; the sender's retry then
        finds it a duplicate, and is acknowledged once it is replicated.
        """
        wanted, timeout = self._settings.min_replicas_ack, self._settings.redis_timeout
        # WAIT answers after at most 80% of redis_timeout, before the socket
        # read (bounded by redis_timeout) would give up on it.
        async with asyncio.timeout(timeout):
            confirmed = await self._redis.wait(wanted, max(1, int(timeout * 800)))
        return int(confirmed) >= wanted

    @staticmethod
    def _fail(
        batch: list[tuple[Routed, asyncio.Future[bool]]], detail: str, reason: str | None = None
    ) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(StoreUnavailable(detail, reason=reason))
