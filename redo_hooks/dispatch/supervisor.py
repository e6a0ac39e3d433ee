"""``--concurrency N``: N worker processes under one parent that keeps them alive.

The parent forks the children and forwards SIGTERM/SIGINT to them. A child
that dies while the parent is not stopping (SIGKILL, the OOM killer, a crash)
is started again at once, or after a backoff if it keeps dying young
(``respawn_backoff``), and the death is logged (``worker_process_died``) and
counted (``redo_hooks_worker_respawns_total``). In burst mode a child that
exits 0 has drained the queue and is not replaced. The parent exits with the
first non-zero exit code of a stopped child, else 0.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

import structlog
from redis.exceptions import RedisError

from ..backoff import exponential
from ..store.connections import redis_client
from ..store.keys import Keys
from .counters import RESPAWNS
from .runtime import App
from .worker import WorkerOptions, work

log = structlog.get_logger("redo_hooks.dispatch.supervisor")

#: A child that dies sooner than this after its start counts as dying young.
YOUNG = 10.0
#: Backoff before restarting a child that keeps dying young: base, cap (s).
RESPAWN_BACKOFF = (0.5, 30.0)


def run(hooks: App, options: WorkerOptions) -> int:
    """Run ``options.concurrency`` worker processes; return the exit code."""
    if options.concurrency <= 1:
        return work(hooks, options)
    return Supervisor(hooks, options).run()


class Supervisor:
    """The parent of ``--concurrency N`` worker processes."""

    def __init__(self, hooks: App, options: WorkerOptions) -> None:
        self.hooks = hooks
        self.options = options
        self.context = multiprocessing.get_context("fork")
        self.children: dict[int, BaseProcess] = {}  # slot -> process
        self.started: dict[int, float] = {}
        self.young_deaths: dict[int, int] = {}
        self.due: dict[int, float] = {}  # slot -> when to start it again
        self.stopping = False
        self.code = 0

    def run(self) -> int:
        """Start every slot, keep them alive until a signal, then wait for them."""
        for slot in range(self.options.concurrency):
            self.start(slot)
        signal.signal(signal.SIGTERM, self.forward)
        signal.signal(signal.SIGINT, self.forward)
        while self.children or (self.due and not self.stopping):
            timeout = max(0.0, min(self.due.values()) - time.monotonic()) if self.due else 1.0
            sentinels = {child.sentinel: slot for slot, child in self.children.items()}
            for ready in wait(list(sentinels), timeout=min(timeout, 1.0)):
                self.ended(sentinels[ready])  # type: ignore[index]
            now = time.monotonic()
            for slot, when in list(self.due.items()):
                if self.stopping:
                    del self.due[slot]
                elif when <= now:
                    del self.due[slot]
                    self.start(slot)
        return self.code

    def start(self, slot: int) -> None:
        child = self.context.Process(
            target=_child, args=(self.hooks, self.options), name=f"redo-hooks-worker-{slot}"
        )
        child.start()
        self.children[slot] = child
        self.started[slot] = time.monotonic()

    def forward(self, signum: int, _frame: object) -> None:
        """SIGTERM/SIGINT: stop replacing children, and pass the signal on."""
        self.stopping = True
        for child in self.children.values():
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    def ended(self, slot: int) -> None:
        child = self.children.pop(slot)
        child.join()
        code = child.exitcode or 0
        if self.stopping or (self.options.burst and code == 0):
            self.code = self.code or code
            return
        lived = time.monotonic() - self.started[slot]
        self.young_deaths[slot] = self.young_deaths.get(slot, 0) + 1 if lived < YOUNG else 0
        delay = 0.0
        if self.young_deaths[slot] > 1:
            delay = exponential(self.young_deaths[slot] - 1, *RESPAWN_BACKOFF, jitter=False)
        log.error(
            "worker_process_died",
            slot=slot,
            pid=child.pid,
            exitcode=code,
            lived_s=round(lived, 1),
            restart_in=delay,
        )
        self.count_respawn()
        self.due[slot] = time.monotonic() + delay

    def count_respawn(self) -> None:
        settings = self.hooks.settings
        try:
            with redis_client(settings.redis_url, socket_timeout=2) as client:
                client.hincrby(Keys(settings.key_prefix).metrics, RESPAWNS, 1)
        except (RedisError, OSError) as exc:  # a count, not data: the log line has it
            log.warning("respawn_not_counted", error=type(exc).__name__)


def _child(hooks: App, options: WorkerOptions) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(work(hooks, options))
