"""Every Redis key redo-hooks writes, in one place.

Key schema (``<p>`` is ``Settings.key_prefix``, default ``rh``)::

    <p>:body:<key>              string  an event's body (zstd-compressed JSON as
                                        received); same TTL as its hash. Also its
                                        dedupe mark: a body received within
                                        dedupe_ttl is a duplicate's
    <p>:ev:<key>                hash    type, subject, received_at, pending (lanes
                                        still holding it), store, tp (trace context),
                                        r:<handler> (runs); EX retention once
                                        pending reaches 0 (or at once if unrouted).
    <p>:seen:<key>              string  dedupe mark, EX the rest of dedupe_ttl: of
                                        every event while marking (retention shorter
                                        than dedupe_ttl; a window after an upgrade
                                        or after a retained event was yielded to
                                        memory pressure, which is given one)
    <p>:memory                  string  "used_memory maxmemory" as the ingest script
                                        last read them, plus what it stored since,
                                        PX 100 (store/lua/ingest.lua)
    <p>:dedupe                  string  epoch s until which the ingest script
                                        writes and reads marks (set by its first
                                        call on a Redis, and by a yield)
    <p>:events                  zset    event keys by time received, trimmed to the
                                        retention: what `redo-hooks replay` selects from
    <p>:lane:<handler>:<subject>  list  event keys waiting for one handler on one
                                        return, oldest first: the unit of ordering
    <p>:lanestate:<handler>:<subject>
                                hash    owner (id of the one RQ job allowed to run
                                        the lane), attempts (of the head event),
                                        crashes (processes that died running it)
    <p>:crash:<job id>          string  how the process running the job died
                                        ("killed by signal 9"), EX 1 h: written by
                                        its parent, read by the job's re-run
    <p>:open:<handler>          string  id of the handler's queued job that idle
                                        lanes are still being given to
    <p>:joblanes:<job id>       list    subjects of the lanes given to a job
    <p>:latest:<handler>:<subject>
                                string  return.updatedAt (epoch s) of the newest
                                        event a latest_only handler ran, EX retention
    <p>:skipped:<handler>       string  count of stale events a latest_only
                                        handler skipped
    <p>:waiting                 zset    lane key -> received_at of its head event:
                                        every lane with events waiting (metrics, status)
    <p>:waiting:events          string  number of events waiting in all lanes
    <p>:metrics                 hash    workers' counters and histogram buckets,
                                        flushed about once a second (metrics.py)
    <p>:permits:<handler>       zset    holder of a run permit -> lease end (Redis
                                        time): the handler's max_concurrency
    <p>:starts:<handler>        zset    start id -> time: the handler's rate_limit
                                        window (EX the window)
    <p>:runs:<process>          set     RQ executions a supervised worker process is
                                        running; its parent renews their heartbeats
                                        (EX 10 heartbeats past the last renewal)
    <p>:runs:<process>:alive    string  set by the process itself every quarter of
                                        heartbeat_ttl (EX heartbeat_ttl)
    <p>:processes               zset    runs key of a live supervised process -> until
                                        when its parent vouches for it (renewed
                                        every beat; listed before the fork)
    <p>:frozen                  zset    runs key of a live process that stopped
                                        beating itself (a handler holds the GIL)
                                        -> until when it counts as frozen
    <p>:dead                    hash    dead-letter id -> JSON record
    <p>:dead:ids                zset    dead-letter ids by time
    <p>:dead:parked             zset    ids of the dead letters a lane is parked on,
                                        by time (what `status` counts)
    <p>:dead:parked:indexed     string  set once maintenance indexed the letters
                                        parked before that index existed
    <p>:drift:count             hash    schema-drift finding -> times seen
    <p>:drift:first|last        hash    finding -> first/last seen (epoch s)
    <p>:drift:sample            hash    finding -> a return id it was seen in
    <p>:drift:untracked         string  findings seen past the tracked cap

The run log (store/runlog.py) lives in the event hash (field ``r:<handler>``)
and in these indexes, which the dashboard and ``redo_hooks.admin`` search:

    <p>:ret:<bucket>            zset    "<return id>\0<event key>" of the events received
                                        in one time bucket, all scored 0 (read by
                                        ZRANGEBYLEX); EXPIREAT the bucket's end +
                                        retention (store/runlog.py: buckets)
    <p>:ord:<bucket>            zset    "<order id or name>\0<return id>", likewise
    <p>:out:<outcome>           zset    event keys by when a run ended so, trimmed
                                        (retrying, dead, parked, skipped, unhandled;
                                        not ok: most events are, the time index
                                        finds them)

RQ's own keys (``rq:job:<id>``, ``rq:queue:<name>``, registries) are RQ's; the
ingest script writes a job hash and queue entry exactly as ``Queue.enqueue``
would (see ``store/rq_internals.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = "rh"

    @property
    def seen_prefix(self) -> str:
        """Prefix of dedupe marks; the ingest script appends the event key."""
        return f"{self.prefix}:seen:"

    def seen(self, key: str) -> str:
        """Dedupe mark of an event key."""
        return f"{self.seen_prefix}{key}"

    @property
    def memory(self) -> str:
        """The ingest script's last reading of Redis' memory (PX 100)."""
        return f"{self.prefix}:memory"

    @property
    def dedupe(self) -> str:
        """Until when (epoch s) dedupe marks are written and read."""
        return f"{self.prefix}:dedupe"

    @property
    def body_prefix(self) -> str:
        """Prefix of stored bodies; the Lua scripts append the event key."""
        return f"{self.prefix}:body:"

    def body(self, key: str) -> str:
        """Stored body of an event."""
        return f"{self.body_prefix}{key}"

    @property
    def event_prefix(self) -> str:
        """Prefix of event hashes; the Lua scripts append the event key."""
        return f"{self.prefix}:ev:"

    def event(self, key: str) -> str:
        """Stored event."""
        return f"{self.event_prefix}{key}"

    @property
    def events(self) -> str:
        """Index of stored events by time received."""
        return f"{self.prefix}:events"

    @property
    def lane_prefix(self) -> str:
        """Prefix of lanes; the ingest script appends ``<handler>:<subject>``."""
        return f"{self.prefix}:lane:"

    @property
    def lane_state_prefix(self) -> str:
        """Prefix of lane states; the ingest script appends ``<handler>:<subject>``."""
        return f"{self.prefix}:lanestate:"

    def lane(self, handler: str, subject: str) -> str:
        """Waiting event keys of one handler for one subject."""
        return f"{self.lane_prefix}{handler}:{subject}"

    def lane_state(self, handler: str, subject: str) -> str:
        """Owner job and head attempts of a lane."""
        return f"{self.lane_state_prefix}{handler}:{subject}"

    @property
    def open_prefix(self) -> str:
        """Prefix of open-job pointers; the ingest script appends the handler."""
        return f"{self.prefix}:open:"

    def open(self, handler: str) -> str:
        """Id of the handler's job that still takes lanes."""
        return f"{self.open_prefix}{handler}"

    @property
    def job_lanes_prefix(self) -> str:
        """Prefix of job lane lists; the ingest script appends the job id."""
        return f"{self.prefix}:joblanes:"

    def job_lanes(self, job_id: str) -> str:
        """Subjects of the lanes given to a job."""
        return f"{self.job_lanes_prefix}{job_id}"

    def latest(self, handler: str, subject: str) -> str:
        """Newest ``return.updatedAt`` a ``latest_only`` handler ran for a return."""
        return f"{self.prefix}:latest:{handler}:{subject}"

    def permits(self, handler: str) -> str:
        """Leases of the runs of ``handler`` under way (its ``max_concurrency``)."""
        return f"{self.prefix}:permits:{handler}"

    def starts(self, handler: str) -> str:
        """Recent starts of ``handler`` (its ``rate_limit`` window)."""
        return f"{self.prefix}:starts:{handler}"

    def skipped(self, handler: str) -> str:
        """Count of stale events a ``latest_only`` handler skipped."""
        return f"{self.prefix}:skipped:{handler}"

    @property
    def waiting(self) -> str:
        """Lanes with events waiting, scored by when their head was received."""
        return f"{self.prefix}:waiting"

    @property
    def waiting_events(self) -> str:
        """Number of events waiting in all lanes."""
        return f"{self.prefix}:waiting:events"

    @property
    def metrics(self) -> str:
        """Workers' metric counters (see ``dispatch/counters.py``)."""
        return f"{self.prefix}:metrics"

    def crash(self, job_id: str) -> str:
        """How the process running RQ job ``job_id`` died, as its parent saw it."""
        return f"{self.prefix}:crash:{job_id}"

    def runs(self, process: str) -> str:
        """Executions a supervised worker process is running (its parent vouches for them)."""
        return f"{self.prefix}:runs:{process}"

    @staticmethod
    def alive(runs: str) -> str:
        """Set by a supervised process itself while it can run Python (``runs``: its ``runs``)."""
        return f"{runs}:alive"

    @property
    def processes(self) -> str:
        """Live supervised worker processes, by when their parents last vouched + slack."""
        return f"{self.prefix}:processes"

    @property
    def frozen(self) -> str:
        """Live worker processes that stopped beating themselves (their parents say so)."""
        return f"{self.prefix}:frozen"

    @property
    def dead(self) -> str:
        """Dead-letter records."""
        return f"{self.prefix}:dead"

    @property
    def dead_ids(self) -> str:
        """Dead-letter ids by time."""
        return f"{self.prefix}:dead:ids"

    @property
    def parked(self) -> str:
        """Ids of the dead letters a lane is parked on, by time."""
        return f"{self.prefix}:dead:parked"

    @property
    def parked_indexed(self) -> str:
        """Set once ``parked`` holds every parked letter (letters from before it existed too)."""
        return f"{self.prefix}:dead:parked:indexed"

    @property
    def worker_handlers(self) -> str:
        """``<host>:<pid>`` -> a worker process's handler names (``store/worker_handlers.py``)."""
        return f"{self.prefix}:worker-handlers"

    @property
    def throttled(self) -> str:
        """Scheduled jobs that wait for a permit (``rate_limit``/``max_concurrency``), by when due.

        The rest of the scheduled registry is retries after a failure.
        """
        return f"{self.prefix}:throttled"

    @property
    def issues(self) -> str:
        """Open issues (groups of dead letters, ``store/issues.py``) by when last seen."""
        return f"{self.prefix}:issues"

    def issue(self, fingerprint: str) -> str:
        """One issue's summary; ``:letters`` and ``:returns`` beside it (``_issues.lua``)."""
        return f"{self.prefix}:issue:{fingerprint}"

    @property
    def issues_indexed(self) -> str:
        """Set once every dead letter is in its issue (letters from before issues too)."""
        return f"{self.prefix}:issues:indexed"

    @property
    def base(self) -> str:
        """``<p>:``: the Lua scripts build the run-log index keys from it."""
        return f"{self.prefix}:"

    def returns(self, bucket: int) -> str:
        """``<return id>\0<event key>`` of the events received in time bucket ``bucket``."""
        return f"{self.prefix}:ret:{bucket}"

    def orders(self, bucket: int) -> str:
        """``<order id or name>\0<return id>`` of the events received in ``bucket``."""
        return f"{self.prefix}:ord:{bucket}"

    def by_outcome(self, outcome: str) -> str:
        """Event keys with a run that ended with ``outcome``, by when it did."""
        return f"{self.prefix}:out:{outcome}"

    def drift(self, part: str) -> str:
        """Schema-drift records: ``count``, ``first``, ``last``, ``sample``, ``untracked``."""
        return f"{self.prefix}:drift:{part}"
