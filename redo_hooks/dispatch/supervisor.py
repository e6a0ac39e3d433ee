"""``redo-hooks worker``: N worker processes under one parent that keeps them alive.

The parent forks the children (``--concurrency``, one by default) and
forwards SIGTERM/SIGINT to them. It runs no handler, so it also keeps the
children's jobs alive in Redis: each child lists its running executions in
``Keys.runs`` and the parent renews their heartbeats every quarter of
``heartbeat_ttl`` while the child process exists. A handler that holds the
GIL for minutes starves its own process's heartbeat thread, but not its
parent: the job is never taken for abandoned while it runs (guarantee 6). A
child that dies has its executions' heartbeats ended at once (``abandon``),
so the next maintenance pass re-runs them; a child whose parent dies is
killed with it (``PR_SET_PDEATHSIG``), so no run outlives the parent that
vouches for it, and a dead pair is noticed when the heartbeats lapse. A child
that dies while the parent is not stopping (SIGKILL, the OOM killer, a crash)
is started again at once, or after a backoff if it keeps dying young
(``respawn_backoff``), and the death is logged (``worker_process_died``) and
counted (``redo_hooks_worker_respawns_total``). In burst mode a child that
exits 0 has drained the queue and is not replaced. The parent exits with the
first non-zero exit code of a stopped child, else 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import replace
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from ..backoff import exponential
from ..logs import get_logger
from ..settings import Settings
from ..store.connections import redis_client
from ..store.keys import Keys
from ..store.rq_registries import abandon, vouch
from .counters import RESPAWNS
from .rq_worker import forget_ended
from .runtime import App
from .worker import StopSignal, WorkerOptions, work

log = get_logger("redo_hooks.dispatch.supervisor")

#: The signals that stop a worker (warm, then cold).
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
#: A child that dies sooner than this after its start counts as dying young.
YOUNG = 10.0
#: Backoff before restarting a child that keeps dying young: base, cap (s).
#: The cap bounds how long a slot is without a live process: a poison event
#: kills only the quarantine process, which must come back to dead-letter it.
RESPAWN_BACKOFF = (0.5, 5.0)


#: The longest the quarantine process waits to start again after dying young.
QUARANTINE_RESPAWN_CAP = 0.5


def run(hooks: App, options: WorkerOptions) -> int:
    """Run ``options.concurrency`` worker processes under this one; return the exit code."""
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
        self.runs: dict[int, str] = {}  # slot -> its child's Keys.runs
        self.stopping = False
        self.code = 0
        self.keys = Keys(hooks.settings.key_prefix)
        self.beat_every = hooks.settings.heartbeat_ttl / 4
        self.next_beat = 0.0
        self._redis: Redis | None = None
        self.beat_failing = False
        self.frozen: set[str] = set()  # runs keys of the children last seen frozen

    @property
    def queues(self) -> list[str]:
        settings = self.hooks.settings
        return [settings.queue, settings.quarantine_queue]

    def serves(self, slot: int) -> str:
        """Which queues slot ``slot``'s process takes jobs from (``Runtime.serve``).

        One more process than ``--concurrency`` runs the quarantine alone, one
        job at a time: lanes a crashed process left go there, so a poison
        event takes down only that process, and is charged alone. In burst
        mode every process serves both queues (a quarantine process started
        on an empty queue would exit at once).
        """
        if self.options.burst:
            return "both"
        return "quarantine" if slot == self.options.concurrency else "normal"

    def run(self) -> int:
        """Start every slot, keep them alive until a signal, then wait for them."""
        extra = 0 if self.options.burst else 1
        log.info(
            "worker_started",
            processes=self.options.concurrency + extra,
            queues=self.queues,
            burst=self.options.burst,
        )
        for slot in range(self.options.concurrency + extra):
            self.start(slot)
        signal.signal(signal.SIGTERM, self.forward)
        signal.signal(signal.SIGINT, self.forward)
        while self.children or (self.due and not self.stopping):
            now = time.monotonic()
            if now >= self.next_beat:
                self.beat()
                self.touch_alive_file()
                self.next_beat = now + self.beat_every
            timeout = min([self.next_beat, *self.due.values()]) - now
            sentinels = {child.sentinel: slot for slot, child in self.children.items()}
            for ready in wait(list(sentinels), timeout=max(0.0, min(timeout, 1.0))):
                self.ended(sentinels[ready])  # type: ignore[index]
            now = time.monotonic()
            for slot, when in list(self.due.items()):
                if self.stopping:
                    del self.due[slot]
                elif when <= now:
                    del self.due[slot]
                    self.start(slot)
        # Said once every process is gone: an operator's "it stopped" line.
        log.info("worker_stopped", code=self.code, signalled=self.stopping)
        return self.code

    def start(self, slot: int) -> None:
        process = f"{socket.gethostname()}:{os.getpid()}:{slot}:{uuid.uuid4().hex[:8]}"
        self.runs[slot] = self.keys.runs(process)
        self.list_process(self.runs[slot])
        options = replace(self.options, runs_key=self.runs[slot], serve=self.serves(slot))
        child = self.context.Process(
            target=_child, args=(self.hooks, options, os.getpid()), name=f"redo-hooks-worker-{slot}"
        )
        # Blocked across the fork: a stop signal reaches the child only once
        # it has its own handler (it unblocks them), never the parent's.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            child.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        self.children[slot] = child
        self.started[slot] = time.monotonic()

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = redis_client(
                self.hooks.settings.redis_url, socket_timeout=2, socket_connect_timeout=2
            )
        return self._redis

    def beat(self) -> None:
        """Renew the heartbeats of every live child's running jobs; note the frozen ones."""
        settings = self.hooks.settings
        try:
            live = [slot for slot, child in self.children.items() if child.is_alive()]
            for slot in live:
                vouch(self.redis, self.runs[slot], self.queues, settings.heartbeat_ttl, time.time())
            self.note_frozen(live)
        except (RedisError, OSError) as exc:  # the children's own beats go on meanwhile
            if not self.beat_failing:
                log.warning("heartbeats_not_renewed", error=type(exc).__name__)
            self.beat_failing = True
        else:
            self.beat_failing = False

    def touch_alive_file(self) -> None:
        """Say the parent's loop turns (``--alive-file``), Redis reachable or not.

        A liveness probe reads it: restarting a worker cannot bring Redis
        back, so only a parent that stopped looping is a reason to.
        """
        path = self.options.alive_file
        if path is None:
            return
        try:
            Path(path).touch()
        except OSError as exc:
            log.warning("alive_file_not_touched", path=path, error=type(exc).__name__)

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
        self.release(slot, child.pid, None if self.stopping else code)
        if self.stopping or (self.options.burst and code == 0):
            self.code = self.code or code
            return
        lived = time.monotonic() - self.started[slot]
        self.young_deaths[slot] = self.young_deaths.get(slot, 0) + 1 if lived < YOUNG else 0
        delay = respawn_delay(self.young_deaths[slot])
        if self.serves(slot) == "quarantine":
            # Dying young is its job (it runs what killed others): the lanes
            # queued behind a poison event wait for it to come back.
            delay = min(delay, QUARANTINE_RESPAWN_CAP)
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

    def list_process(self, runs: str) -> None:
        """List a child in ``Keys.processes`` before it is forked (best effort).

        Listed before it can take a job, a child that freezes at once is
        already one a rescuer checks; if Redis is away, the next beat lists it.
        """
        until = time.time() + 2 * self.hooks.settings.heartbeat_ttl
        with contextlib.suppress(RedisError, OSError):
            self.redis.zadd(self.keys.processes, {runs: until})

    def note_frozen(self, live: list[int]) -> None:
        """List the live children in ``Keys.processes``, and in ``Keys.frozen`` the silent ones.

        A child whose handler holds the GIL runs no Python; a job one of its
        idle slots had asked Redis for meanwhile sits in RQ's intermediate
        list until it wakes. Maintenance leaves such jobs alone while a
        listed process does not beat itself: the rescuer checks the
        processes' own beats (``LaneWorker.taken_jobs_may_be_alive``), so
        it does not depend on this beat coming in time. ``Keys.frozen`` is
        what this parent saw (logged, and read by rescuers of the previous
        release during a rolling deploy).
        """
        ttl = self.hooks.settings.heartbeat_ttl
        wall = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            for slot in live:
                pipe.exists(Keys.alive(self.runs[slot]))
            if live:
                pipe.zadd(self.keys.processes, {self.runs[s]: wall + 2 * ttl for s in live})
            pipe.zremrangebyscore(self.keys.processes, "-inf", wall)
            beating = pipe.execute()[: len(live)]
        now = time.monotonic()
        frozen = {
            self.runs[slot]: slot
            for slot, beats in zip(live, beating, strict=True)
            if not beats and now - self.started[slot] > ttl / 2
        }
        thawed = [self.runs[slot] for slot in live if self.runs[slot] not in frozen]
        with self.redis.pipeline(transaction=False) as pipe:
            if frozen:
                pipe.zadd(self.keys.frozen, dict.fromkeys(frozen, wall + ttl))
            if thawed:
                pipe.zrem(self.keys.frozen, *thawed)
            pipe.execute()
        for runs, slot in frozen.items():
            if runs not in self.frozen:
                log.warning("worker_process_frozen", pid=self.children[slot].pid)
        self.frozen = set(frozen)

    def release(self, slot: int, pid: int | None, died: int | None) -> None:
        """A child ended: what it was still running is re-run at the next maintenance pass.

        ``died``: its exit code, when it was not asked to stop: each job's
        re-run reads how its process died (``Keys.crash``) for the record of
        a crash it is charged (``LaneJob.after_crash``).
        """
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self.keys.processes, self.runs[slot])
                pipe.zrem(self.keys.frozen, self.runs[slot])
                pipe.execute()
            jobs = abandon(self.redis, self.runs[slot], self.queues)
            if jobs and died is not None:
                how = f"killed by signal {-died}" if died < 0 else f"exited with code {died}"
                with self.redis.pipeline(transaction=False) as pipe:
                    for job in jobs:
                        pipe.set(self.keys.crash(job), how, ex=3600)
                    pipe.execute()
        except (RedisError, OSError) as exc:  # then its heartbeats lapse as after a crash
            log.warning("abandoned_jobs_not_released", pid=pid, error=type(exc).__name__)
            return
        if jobs:
            log.warning("worker_process_left_jobs", pid=pid, jobs=jobs)

    def count_respawn(self) -> None:
        try:
            self.redis.hincrby(self.keys.metrics, RESPAWNS, 1)
        except (RedisError, OSError) as exc:  # a count, not data: the log line has it
            log.warning("respawn_not_counted", error=type(exc).__name__)


def respawn_delay(young_deaths: int) -> float:
    """Seconds before a slot whose process died young ``young_deaths`` times in a row starts again.

    At once the first time, then doubling from ``RESPAWN_BACKOFF``'s base up
    to its cap: a slot is never without a process for longer than the cap
    plus a process start.
    """
    if young_deaths <= 1:
        return 0.0
    return exponential(young_deaths - 1, *RESPAWN_BACKOFF, jitter=False)


def _child(hooks: App, options: WorkerOptions, parent: int) -> None:
    # First: a SIGTERM the parent passes on from now on is a clean stop.
    stop = StopSignal()
    stop.install()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    die_with_parent(parent)
    # Handlers are throughput work; a receiver on the same host is what Redo
    # waits on. The parent keeps its priority: it renews the heartbeats.
    os.nice(hooks.settings.worker_nice)
    if options.runs_key is not None:
        beat_alive(hooks.settings, options.runs_key)
    raise SystemExit(work(hooks, options, stop))


def beat_alive(settings: Settings, runs_key: str) -> threading.Event:
    """Say, from a thread, every quarter of ``heartbeat_ttl``, that this process runs Python.

    When a handler holds the GIL, the key lapses and the parent lists this
    process as frozen (``Supervisor.note_frozen``). The same beat unlists
    executions this process no longer runs (``forget_ended``). Set the
    returned event to stop.
    """
    client = redis_client(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    key = Keys.alive(runs_key)

    done = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(RedisError, OSError):  # the parent keeps vouching
                client.set(key, 1, ex=settings.heartbeat_ttl)
                # An execution whose end Redis missed (lost meanwhile) is
                # unlisted, so its parent stops vouching for it.
                forget_ended(client, runs_key)
            if done.wait(settings.heartbeat_ttl / 4):
                client.close()
                return

    threading.Thread(target=beat, name="redo-hooks-alive", daemon=True).start()
    return done


#: prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux).

    The parent vouches for this process's running jobs; without it they
    could be taken for abandoned and run elsewhere while still running here.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
