"""The receiver's schema-drift watch: a body now and then, compared with the models.

Every ``drift_sample_interval`` seconds (0.1 by default) a receiver process
parses the body it just stored and names what the models do not know
(:mod:`redo_hooks.models.drift`). Findings are written to Redis beside the
request, after it was answered; a new one is logged once (``schema_drift``).
A new field appears in every body of its kind, so a sample finds it within
moments; checking every body would parse and walk each one twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ..logs import get_logger
from ..models import parse_json
from ..models.drift import drift, type_findings
from ..settings import Settings
from ..store import lua
from ..store.drift import record_args, split
from ..store.keys import Keys

log = get_logger("redo_hooks.receiver.drift")


class DriftWatch:
    """Decides when to check a body, checks it, and records what it found."""

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.interval = settings.drift_sample_interval
        self.cap = settings.drift_max_findings
        self.keys = keys
        self.next_check = 0.0
        self.pending: set[asyncio.Task[None]] = set()

    def due(self) -> bool:
        """Whether the next body is to be checked (and, if so, the one after waits)."""
        now = time.monotonic()
        if now < self.next_check:
            return False
        self.next_check = now + self.interval
        return True

    def check(self, redis: AsyncRedis, body: bytes, subject: str, schema_errors: list[str]) -> None:
        """Compare ``body`` with the models; record findings beside the request."""
        try:
            # parse_json: the leeway the receiver took the body with (a number
            # beyond a double, a lone surrogate), which orjson alone refuses.
            findings = drift(parse_json(body)) + type_findings(schema_errors)
        except Exception:  # a bug here must never cost the event
            log.exception("drift_check_failed")
            return
        if findings:
            task = asyncio.get_running_loop().create_task(self._record(redis, findings, subject))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the findings still being recorded (before closing)."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout)

    async def _record(self, redis: AsyncRedis, findings: list[Any], subject: str) -> None:
        keys, args = record_args(self.keys, findings, subject, time.time(), self.cap)
        script = redis.register_script(lua.source("drift_record"))  # findings are rare
        try:
            new = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.debug("drift_not_recorded", error=type(exc).__name__)
            return
        for raw in new:
            kind, path, value = split(raw)
            log.warning(
                "schema_drift",
                kind=kind,
                path=path,
                value=value or None,
                sample_return=subject,
                hint="Redo sends something the models do not know: see docs/observability.md",
            )
