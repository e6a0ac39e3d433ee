"""Dispatch: lanes run in order, failures retry or dead-letter, handlers are isolated.

Workers run in this process (``redo_hooks.testing.drain``), so handlers can
record what they saw in plain lists.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable

import orjson
import pytest
from redis import Redis
from rq import Queue

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.dispatch.worker import build
from redo_hooks.ops.events import EventLog
from redo_hooks.ops.status import snapshot as status_snapshot
from redo_hooks.receiver.body import parse_body
from redo_hooks.store import lua
from redo_hooks.store.events import unpack_body
from redo_hooks.store.ingest import IngestPlan, Routed, read_reply
from redo_hooks.store.keys import Keys
from redo_hooks.store.replies import text
from redo_hooks.testing import DeadLettered, deliver, drain, sample_body, sample_event, wait_for

from .conftest import MakeHooks, as_bytes

Seen = dict[str, list[int]]


def seq(event: ReturnEvent) -> int:
    return int(event.raw["seq"])


def post_series(hooks: RedoHooks, subjects: list[str], per_subject: int) -> None:
    # Interleaved across returns, in order within each return (as Redo sends).
    for n in range(per_subject):
        for subject in subjects:
            kind = "return.created" if n == 0 else "return.updated"
            assert deliver(hooks, sample_event(kind, return_id=subject, seq=n))


def recorder(seen: Seen):  # type: ignore[no-untyped-def]
    def record(event: ReturnEvent) -> None:
        seen[event.return_id].append(seq(event))

    return record


def test_each_handler_sees_each_returns_events_once_in_order(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    first: Seen = defaultdict(list)
    second: Seen = defaultdict(list)
    hooks.add(recorder(first), "return", name="first")
    hooks.add(recorder(second), "return", name="second")
    subjects = [f"ret-{i}" for i in range(6)]
    post_series(hooks, subjects, 5)
    drain(hooks)
    expected = {s: [0, 1, 2, 3, 4] for s in subjects}
    assert dict(first) == expected
    assert dict(second) == expected


def test_events_arriving_while_a_lane_runs_join_it_in_order(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    seen: Seen = defaultdict(list)

    def record_and_deliver_next(event: ReturnEvent) -> None:
        seen[event.return_id].append(seq(event))
        if seq(event) < 4:  # Redo sends the next one while this one is handled
            deliver(
                hooks, sample_event("return.updated", return_id=event.return_id, seq=seq(event) + 1)
            )

    hooks.add(record_and_deliver_next, "return", name="chain")
    deliver(hooks, sample_event("return.created", return_id="ret-x", seq=0))
    drain(hooks)
    assert seen == {"ret-x": [0, 1, 2, 3, 4]}


def test_a_failing_event_retries_holding_only_its_own_lane(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=3)
    flaky_log: list[tuple[str, int]] = []
    steady: Seen = defaultdict(list)
    failures = {("ret-a", 1): 2}  # event 1 of ret-a fails twice, then succeeds

    def flaky(event: ReturnEvent) -> None:
        flaky_log.append((event.return_id, seq(event)))
        key = (event.return_id, seq(event))
        if failures.get(key, 0) > 0:
            failures[key] -= 1
            raise RuntimeError("downstream unavailable")

    hooks.add(flaky, "return", name="flaky")
    hooks.add(recorder(steady), "return", name="steady")
    post_series(hooks, ["ret-a", "ret-b"], 4)
    drain(hooks)
    a = [n for s, n in flaky_log if s == "ret-a"]
    assert a == [0, 1, 1, 1, 2, 3]  # two failed attempts, then in order
    assert [n for s, n in flaky_log if s == "ret-b"] == [0, 1, 2, 3]
    # The other handler ran every event exactly once: failures never re-run it.
    assert dict(steady) == {"ret-a": [0, 1, 2, 3], "ret-b": [0, 1, 2, 3]}


def test_an_always_failing_event_is_dead_lettered_and_the_lane_moves_on(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=2)
    attempts: list[int] = []

    def broken_on_one(event: ReturnEvent) -> None:
        attempts.append(seq(event))
        if seq(event) == 1:
            raise ValueError("cannot handle event one")

    hooks.add(broken_on_one, "return", name="broken")
    post_series(hooks, ["ret-d"], 3)
    with pytest.raises(DeadLettered, match="cannot handle event one"):
        drain(hooks)
    assert attempts == [0, 1, 1, 1, 2]  # 1 attempt + 2 retries, then the lane moved on
    keys = Keys()
    (record,) = [orjson.loads(r) for r in redis.hvals(keys.dead)]
    assert record["handler"] == "broken" and record["subject"] == "ret-d"
    assert record["attempts"] == 3 and record["reason"] == "handler_failed"
    assert "ValueError: cannot handle event one" in record["traceback"]
    # The dead event's body is kept for replay: it does not expire.
    assert redis.ttl(keys.event(record["event_key"])) == -1
    assert redis.zcard(keys.dead_ids) == 1
    assert list(redis.scan_iter("rh:lane*")) == []


def test_an_off_schema_value_reads_as_none_and_only_strict_handlers_dead_letter_it(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=5)
    ran: list[tuple[str, str, object, list[str]]] = []

    def note(name: str) -> Callable[[ReturnEvent], None]:
        return lambda event: ran.append(
            (name, event.return_id, event.return_.items, event.schema_errors)
        )

    hooks.add(note("tolerant"), "return", name="tolerant")
    hooks.add(note("strict"), "return", name="strict", strict=True)
    raw = sample_event(return_id="ret-bad")
    raw["return"]["items"] = "not a list"
    assert deliver(hooks, raw)
    assert deliver(hooks, sample_event("return.updated", return_id="ret-bad"))
    with pytest.raises(DeadLettered):
        drain(hooks)
    errors = ["return.items: Expected `array | null`, got `str`"]
    tolerant = [r[1:] for r in ran if r[0] == "tolerant"]
    strict = [r[1:] for r in ran if r[0] == "strict"]
    assert tolerant[0] == ("ret-bad", None, errors)
    assert tolerant[1][2] == [] and tolerant[1][1]  # the later event, items and all
    assert len(strict) == 1 and strict[0][2] == []  # the strict handler: only the later one
    (record,) = [orjson.loads(r) for r in redis.hvals(Keys().dead)]
    assert record["handler"] == "strict"
    assert record["reason"] == "invalid_event" and record["attempts"] == 0
    assert "return.items: Expected `array | null`" in record["error"]


def test_async_handlers_run(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    seen: Seen = defaultdict(list)

    async def record(event: ReturnEvent) -> None:
        seen[event.return_id].append(seq(event))

    hooks.add(record, "return", name="async")
    post_series(hooks, ["ret-1", "ret-2"], 3)
    drain(hooks)
    assert dict(seen) == {"ret-1": [0, 1, 2], "ret-2": [0, 1, 2]}


def test_a_long_lane_yields_the_worker_in_batches_keeping_order(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks(lane_batch=3)
    seen: Seen = defaultdict(list)
    hooks.add(recorder(seen), "return", name="h")
    post_series(hooks, ["ret-long"], 10)
    ran = drain(hooks)
    assert seen == {"ret-long": list(range(10))}
    assert ran == 4  # 3 + 3 + 3 + 1 events, one job each


def test_lanes_that_yield_together_go_on_together_in_one_shared_job(
    make_hooks: MakeHooks,
) -> None:
    """Ten lanes that each yield after one event are handed to one job, not ten."""
    hooks = make_hooks(lane_batch=1)
    seen: Seen = defaultdict(list)
    hooks.add(recorder(seen), "return", name="h")
    subjects = [f"ret-{r}" for r in range(10)]
    post_series(hooks, subjects, 3)
    assert drain(hooks) == 3  # a job for each round of one event per lane
    assert dict(seen) == {s: [0, 1, 2] for s in subjects}


def test_a_retry_with_backoff_goes_through_rq_s_scheduled_registry(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=1, backoff=0.05, backoff_cap=0.05)
    calls: list[int] = []

    def fail_once(event: ReturnEvent) -> None:
        calls.append(1)
        if len(calls) == 1:
            # While this fails, the retry is not yet scheduled...
            assert redis.zcard("rq:scheduled:redo-hooks") == 0
            raise RuntimeError("first time")

    hooks.add(fail_once, "return", name="h")
    deliver(hooks, sample_body(return_id="ret-s"))
    drain(hooks)
    assert len(calls) == 2


def test_a_job_that_does_not_own_its_lane_does_nothing(make_hooks: MakeHooks, redis: Redis) -> None:
    hooks = make_hooks()
    ran: list[str] = []
    hooks.add(lambda event: ran.append(event.return_id), "return", name="h")
    deliver(hooks, sample_body(return_id="ret-o"))
    # A stray second job for the same lane (e.g. a duplicate from a crash).
    Queue("redo-hooks", connection=redis).enqueue(
        "redo_hooks.dispatch.lanes.run_lane", args=("h",), job_id="stray", at_front=True
    )
    redis.rpush("rh:joblanes:stray", "ret-o")
    drain(hooks)
    assert ran == ["ret-o"]


def test_duplicates_are_not_routed_again(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    seen: list[str] = []
    hooks.add(lambda event: seen.append(event.key), "return", name="h")
    body = sample_body(return_id="ret-dup")
    assert deliver(hooks, body) is True
    assert deliver(hooks, body) is False
    drain(hooks)
    assert drain(hooks) == 0
    assert len(seen) == 1


def test_under_backlog_one_job_gathers_up_to_lanes_per_job_returns(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(lanes_per_job=3)
    seen: Seen = defaultdict(list)
    hooks.add(recorder(seen), "return", name="h")
    subjects = [f"ret-{i}" for i in range(7)]
    post_series(hooks, subjects, 2)
    jobs = [as_bytes(j).decode() for j in redis.lrange("rq:queue:redo-hooks", 0, -1)]
    lanes = [[as_bytes(s).decode() for s in redis.lrange(f"rh:joblanes:{j}", 0, -1)] for j in jobs]
    assert lanes == [subjects[0:3], subjects[3:6], subjects[6:7]]
    assert drain(hooks) == 3
    assert dict(seen) == {s: [0, 1] for s in subjects}
    assert list(redis.scan_iter("rh:joblanes:*")) == []
    assert list(redis.scan_iter("rh:open:*")) == []


def test_a_started_job_takes_no_new_lanes_and_a_rerun_does_nothing_twice(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    seen: Seen = defaultdict(list)

    def record_and_deliver_elsewhere(event: ReturnEvent) -> None:
        seen[event.return_id].append(seq(event))
        if event.return_id == "ret-1" and seq(event) == 0:
            # Arrives while this job runs: must go to a new job, not this one.
            deliver(hooks, sample_event("return.created", return_id="ret-2", seq=0))

    hooks.add(record_and_deliver_elsewhere, "return", name="h")
    deliver(hooks, sample_event("return.created", return_id="ret-1", seq=0))
    first_job = as_bytes(redis.lrange("rq:queue:redo-hooks", 0, -1)[0])
    assert drain(hooks) == 2
    assert dict(seen) == {"ret-1": [0], "ret-2": [0]}
    # RQ re-running a job (as after a crash) finds its lanes no longer its own.
    redis.rpush("rh:joblanes:" + first_job.decode(), "ret-1")
    Queue("redo-hooks", connection=redis).enqueue(
        "redo_hooks.dispatch.lanes.run_lane", args=("h",), job_id=first_job.decode()
    )
    deliver(hooks, sample_event("return.updated", return_id="ret-1", seq=1))
    drain(hooks)
    assert dict(seen) == {"ret-1": [0, 1], "ret-2": [0]}


def test_a_redelivery_after_the_dedupe_window_runs_again_and_keeps_its_body(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(dedupe_ttl=1, retention=3600)
    seen: list[str] = []
    hooks.add(lambda event: seen.append(event.key), "return", name="h")
    body = sample_body(return_id="ret-late")
    assert deliver(hooks, body)
    drain(hooks)
    key, stored = Keys().event(seen[0]), Keys().body(seen[0])
    assert 0 < redis.ttl(key) <= 3600  # done: kept for the retention only
    assert 0 < redis.ttl(stored) <= 3600
    received = float(as_bytes(redis.hget(key, "received_at")))

    def window_passed() -> bool:
        seconds, micros = redis.time()
        return seconds + micros / 1e6 > received + 1

    wait_for(window_passed, 10, "the dedupe window to pass")
    assert deliver(hooks, body)  # outside the window: a new delivery
    assert redis.ttl(key) == redis.ttl(stored) == -1  # waiting again: kept while a lane holds it
    drain(hooks)
    assert seen == [seen[0], seen[0]]
    assert 0 < redis.ttl(key) <= 3600
    assert 0 < redis.ttl(stored) <= 3600


def test_a_lane_whose_job_was_deleted_by_hand_is_rescued(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    ran: list[str] = []
    hooks.add(lambda event: ran.append(event.return_id), "return", name="h")
    deliver(hooks, sample_body(return_id="ret-a"))
    Queue("redo-hooks", connection=redis).empty()  # type: ignore[no-untyped-call]  # `rq empty`
    deliver(hooks, sample_body(return_id="ret-b"))  # not given to the deleted job
    drain(hooks)
    # Worker maintenance found ret-a's lane owned by a job that no longer
    # exists and gave it to a new one.
    assert sorted(ran) == ["ret-a", "ret-b"]


def test_a_job_taken_from_the_queue_is_given_no_more_lanes(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Taken, not started (its worker frozen): new returns go to a new job, not wait for it."""
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="h")
    deliver(hooks, sample_body(return_id="ret-a"))
    deliver(hooks, sample_body(return_id="ret-b"))  # gathered by the same queued job
    (taken,) = [text(j) for j in redis.lrange("rq:queue:redo-hooks", 0, -1)]
    assert redis.lrange(f"rh:joblanes:{taken}", 0, -1) == [b"ret-a", b"ret-b"]
    # What a worker's blocking dequeue does, served while its process is frozen.
    redis.lmove("rq:queue:redo-hooks", "rq:queue:redo-hooks:intermediate", "LEFT", "RIGHT")
    deliver(hooks, sample_body(return_id="ret-c"))
    assert redis.lrange(f"rh:joblanes:{taken}", 0, -1) == [b"ret-a", b"ret-b"]
    (fresh,) = [text(j) for j in redis.lrange("rq:queue:redo-hooks", 0, -1)]
    assert redis.hget("rh:lanestate:h:ret-c", "owner") == fresh.encode() != taken.encode()


@pytest.mark.parametrize("thaws", ["beats again", "is unlisted"])
def test_a_taken_job_is_rescued_only_while_every_listed_process_beats_itself(
    make_hooks: MakeHooks, redis: Redis, thaws: str
) -> None:
    """The rescuer checks the processes' own beats, not a parent's later note.

    A process its parent lists as live but whose own beat lapsed may be
    frozen holding the job: the rescue waits, whether or not the parent has
    written ``Keys.frozen`` yet. Once the process beats again, or its
    listing lapses (its parent gone), the job is rescued and runs.
    """
    hooks = make_hooks()
    ran: list[str] = []
    hooks.add(lambda event: ran.append(event.return_id), "return", name="h")
    deliver(hooks, sample_body(return_id="ret-t"))
    (taken,) = [text(j) for j in redis.lrange("rq:queue:redo-hooks", 0, -1)]
    # What a worker's blocking dequeue does, served while its process is frozen.
    redis.lmove("rq:queue:redo-hooks", "rq:queue:redo-hooks:intermediate", "LEFT", "RIGHT")
    keys, runs = Keys(), Keys().runs("host:1:0:abcd")
    redis.zadd(keys.processes, {runs: time.time() + 60})  # its parent vouches; no beat
    worker, runtime = build(hooks)
    intermediate = worker.queues[0].intermediate_queue
    redis.set(intermediate.get_first_seen_key(taken), time.time() - 3600)  # long stranded

    def held() -> bool:
        """One maintenance pass; whether the job is still where its taker left it."""
        worker.run_maintenance()
        return intermediate.get_job_ids() == [taken]

    try:
        assert worker.taken_jobs_may_be_alive() and held()
        assert redis.zcard(keys.frozen) == 0  # held with no parent's note
        if thaws == "beats again":
            redis.set(keys.alive(runs), 1)
        else:
            redis.zadd(keys.processes, {runs: time.time() - 1})
        assert not worker.taken_jobs_may_be_alive() and not held()
    finally:
        runtime.close()
    drain(hooks)
    assert ran == ["ret-t"]


def test_one_ingest_call_of_many_events_writes_every_index_entry(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """The writes a call's events share are made once per call, in parts: none is lost.

    700 events of 600 returns, each with an order of its own, in one call:
    more entries per index than one write of them takes.
    """
    hooks = make_hooks(lanes_per_job=1000)
    hooks.add(lambda event: None, "return", name="h")
    events = []
    for n in range(700):
        event = sample_event("return.updated", return_id=f"ret-{n % 600}", seq=n)
        event["order"] = {**event["order"], "id": f"ord-{n % 600}", "name": f"#{n % 600}"}
        events.append(parse_body(orjson.dumps(event), max_depth=32))
    keys = Keys()
    plan = IngestPlan(hooks.settings, keys)
    script = redis.register_script(lua.source("ingest"))
    stored, yielded = read_reply(script(*plan.build([Routed(e, ["h"]) for e in events])))
    assert stored == [1] * 700 and yielded == 0
    assert redis.zcard(keys.events) == 700
    assert redis.zcard(keys.waiting) == 600 and redis.get(keys.waiting_events) == b"700"
    (job,) = [text(j) for j in redis.lrange("rq:queue:redo-hooks", 0, -1)]
    assert sorted(text(s) for s in redis.lrange(keys.job_lanes(job), 0, -1)) == sorted(
        f"ret-{n}" for n in range(600)
    )
    log = EventLog(redis, keys, hooks.settings.retention)
    assert sorted(log.return_keys(["ret-0", "ret-599"])) == sorted(
        e.key for e in (events[0], events[600], events[599])
    )
    assert log.order_returns("ord-17") == log.order_returns("#17") == {"ret-17"}
    assert log.order_returns("599") == {"ret-599"}
    drain(hooks)
    assert redis.zcard(keys.waiting) == 0


def test_a_lane_whose_job_failed_for_good_dead_letters_its_head_and_moves_on(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    ran: list[int] = []
    hooks.add(lambda event: ran.append(seq(event)), "return", name="h")
    for n in range(3):
        deliver(hooks, sample_event("return.updated", return_id="ret-p", seq=n))
    # As RQ leaves a job whose handler killed its process on every try.
    job_id = as_bytes(redis.lpop("rq:queue:redo-hooks")).decode()
    redis.hset(f"rq:job:{job_id}", "status", "failed")
    with pytest.raises(DeadLettered, match="crashed every try"):
        drain(hooks)
    assert ran == [1, 2]
    (record,) = [orjson.loads(r) for r in redis.hvals(Keys().dead)]
    assert record["reason"] == "job_failed" and record["subject"] == "ret-p"


def test_a_dead_letter_keeps_the_first_and_the_last_error(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks(retries=2)
    calls: list[int] = []

    def worse_each_time(event: ReturnEvent) -> None:
        calls.append(1)
        raise RuntimeError(f"failure number {len(calls)}")

    hooks.add(worse_each_time, "return", name="h")
    deliver(hooks, sample_body(return_id="ret-e"))
    with pytest.raises(DeadLettered):
        drain(hooks)
    (record,) = [orjson.loads(r) for r in redis.hvals(Keys().dead)]
    assert record["first_error"] == "RuntimeError: failure number 1"
    assert record["error"] == "RuntimeError: failure number 3"
    assert record["attempts"] == 3


def test_a_handler_s_own_backoff_overrides_the_settings(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=1, backoff=300)  # drain would wait minutes for these
    calls: list[int] = []

    def fail_once(event: ReturnEvent) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("once")

    hooks.add(fail_once, "return", name="h", backoff=0)
    deliver(hooks, sample_body(return_id="ret-b0"))
    drain(hooks, timeout=30)
    assert len(calls) == 2


def test_a_rerun_of_a_job_fences_out_the_earlier_run(make_hooks: MakeHooks, redis: Redis) -> None:
    # RQ re-queues a job whose heartbeat lapsed; if the first run was in fact
    # alive (stalled), it must not be able to acknowledge anything any more.
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="h")
    deliver(hooks, sample_body(return_id="ret-f"))
    job_id = as_bytes(redis.lrange("rq:queue:redo-hooks", 0, -1)[0]).decode()
    k = Keys()
    claim = redis.register_script(lua.source("job_claim"))
    lane_next = redis.register_script(lua.source("lane_next"))

    def claim_as(run: str) -> list[bytes]:
        keys = [k.open("h"), k.job_lanes(job_id)]
        return list(claim(keys=keys, args=[job_id, f"{job_id}:{run}", k.lane_state("h", "")]))

    def next_as(run: str) -> bytes:
        reply = lane_next(
            keys=[k.lane("h", "ret-f"), k.lane_state("h", "ret-f"), k.waiting, k.waiting_events],
            args=[f"{job_id}:{run}", "", k.event_prefix, 60, "", "h", k.base, k.body_prefix],
        )
        return as_bytes(reply[0])

    assert claim_as("first") == [b"ret-f"]
    assert next_as("first") == b"event"
    assert claim_as("second") == [b"ret-f"]  # the re-run takes the lane over
    assert next_as("first") == b"lost"
    assert next_as("second") == b"event"


def test_a_claim_reads_each_lane_s_head_as_its_first_step_would(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """One round trip for every lane's first step: the same answer lane_next gives."""
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="h")
    deliver(hooks, sample_body(return_id="ret-x", seq=0))
    deliver(hooks, sample_body(return_id="ret-x", seq=1))
    deliver(hooks, sample_body(return_id="ret-y", seq=2), store="shop-9")
    job_id = text(redis.lrange("rq:queue:redo-hooks", 0, -1)[0])
    k = Keys()
    claimed = redis.register_script(lua.source("job_claim"))(
        keys=[k.open("h"), k.job_lanes(job_id)],
        args=[
            job_id,
            f"{job_id}:run",
            k.lane_state("h", ""),
            k.lane("h", ""),
            k.event_prefix,
            k.body_prefix,
        ],
    )
    lane_next = redis.register_script(lua.source("lane_next"))
    for n, subject in enumerate(["ret-x", "ret-y"]):
        first = lane_next(
            keys=[k.lane("h", subject), k.lane_state("h", subject), k.waiting, k.waiting_events],
            args=[f"{job_id}:run", "", k.event_prefix, 60, "", "h", k.base, k.body_prefix],
        )
        assert claimed[7 * n : 7 * n + 7] == [subject.encode(), *first[1:]]
    assert claimed[7 * 1 + 5] == b"shop-9"


def test_a_claim_carries_bodies_up_to_its_byte_bound_and_the_rest_read_their_own(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """A claim's reply waits in Redis' output buffer (Redis memory): large bodies are not
    all sent at once. Before: 50 lanes of 48 KB bodies went out in one 2.4 MB reply,
    over the room kept above the high-water mark, and the worker hit OOM."""
    hooks = make_hooks(retries=0)
    seen: list[str] = []
    hooks.add(lambda event: seen.append(event.return_id), "return", name="h")
    filler = os.urandom(30_000).hex()  # 60 KB that compress to about 30 KB
    for r in range(6):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}", note=filler))
    job_id = text(redis.lrange("rq:queue:redo-hooks", 0, -1)[0])
    k = Keys()
    claimed = redis.register_script(lua.source("job_claim"))(
        keys=[k.open("h"), k.job_lanes(job_id)],
        args=[
            job_id,
            f"{job_id}:run",
            k.lane_state("h", ""),
            k.lane("h", ""),
            k.event_prefix,
            k.body_prefix,
            64 * 1024,
        ],
    )
    carried = [len(claimed[7 * n + 2]) for n in range(6)]
    heads = [claimed[7 * n + 1] for n in range(6)]
    # Bodies until the bound is passed (once), then none: those lanes read their own.
    assert [bool(h) for h in heads] == [True, True, True, False, False, False], carried
    assert sum(carried[:2]) < 64 * 1024 <= sum(carried[:3])
    # The same through a worker (CLAIM_BODY_BYTES: 128 KB, so the last lanes
    # read their own head), from a fresh start.
    redis.flushall()
    for r in range(6):
        assert deliver(hooks, sample_body(return_id=f"ret-{r}", note=filler))
    drain(hooks)
    assert sorted(seen) == [f"ret-{r}" for r in range(6)]


def test_latest_only_skips_snapshots_older_than_the_newest_handled(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    latest: list[int] = []
    every: list[int] = []
    hooks.add(lambda e: latest.append(seq(e)), "return.updated", name="latest", latest_only=True)
    hooks.add(lambda e: every.append(seq(e)), "return.updated", name="every")
    # Delivered in this order; updatedAt says seq 1 is older than seq 0.
    stamps = [
        "2026-01-01T10:00:00Z",
        "2026-01-01T09:00:00Z",
        "2026-01-01T10:00:00Z",
        "2026-01-01T11:00:00Z",
    ]
    for n, stamp in enumerate(stamps):
        event = sample_event("return.updated", return_id="ret-l", seq=n)
        event["return"]["updatedAt"] = stamp
        deliver(hooks, event)
    drain(hooks)
    assert every == [0, 1, 2, 3]
    assert latest == [0, 2, 3]  # 1 is stale; 2 is as new as 0, not older: it runs
    assert redis.get("rh:skipped:latest") == b"1"


def test_a_worker_without_the_handler_passes_its_lanes_on_instead_of_failing(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    new = make_hooks()  # the app after a deploy that added handler "h"
    ran: list[int] = []
    new.add(lambda event: ran.append(seq(event)), "return", name="h")
    for n in range(2):
        deliver(new, sample_event("return.updated", return_id="ret-u", seq=n))
    old = make_hooks()  # a worker still running the app from before
    old.add(lambda event: None, "return", name="other")
    worker, runtime = build(old)
    try:
        worker.run(burst=True)
    finally:
        runtime.close()
    assert ran == [] and redis.zcard("rq:failed:redo-hooks") == 0
    assert redis.zcard("rq:scheduled:redo-hooks") == 1  # passed on, not failed
    assert redis.llen(Keys().lane("h", "ret-u")) == 2
    drain(new)  # a worker that knows "h" takes it when it comes due
    assert ran == [0, 1]


def test_events_of_a_removed_handler_are_dead_lettered_after_the_setting(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    before = make_hooks()  # the app before a deploy removed handler "gone"
    before.add(lambda event: None, "return", name="gone")
    for n in range(3):
        deliver(before, sample_event("return.updated", return_id="ret-x", seq=n))
    after = make_hooks(removed_handler_after=0)  # waited long enough already
    after.add(lambda event: None, "return", name="other")
    drain(after, raise_on_dead=False)
    letters = [orjson.loads(r) for r in redis.hvals(Keys().dead)]
    assert sorted(seq_of(redis, d["event_key"]) for d in letters) == [0, 1, 2]
    assert {(d["reason"], d["handler"], d["subject"]) for d in letters} == {
        ("handler_removed", "gone", "ret-x")
    }
    assert redis.llen(Keys().lane("gone", "ret-x")) == 0
    assert not redis.exists(Keys().lane_state("gone", "ret-x"))  # released
    assert redis.zcard("rq:scheduled:redo-hooks") == 0  # nothing passed on any more
    assert redis.zcard(Keys().waiting) == 0


def seq_of(redis: Redis, event_key: str) -> int:
    body = redis.get(Keys().body(event_key))
    return int(orjson.loads(unpack_body(body))["seq"])


def test_an_event_with_a_lone_surrogate_is_handled_with_a_replacement_character(
    make_hooks: MakeHooks,
) -> None:
    """Stored as received; the handler reads U+FFFD where the cut emoji was."""
    seen: list[object] = []
    hooks = make_hooks()
    hooks.add(lambda event: seen.append(event.raw["note"]), "return", name="h")
    body = sample_body(return_id="ret-s").replace(b'"type":', b'"note":"cut \\ud83d","type":', 1)
    assert deliver(hooks, body)
    drain(hooks)
    assert seen == ["cut \ufffd"]


def test_burst_ends_when_only_a_missing_handlers_events_are_left_and_status_names_it(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    before = make_hooks()  # an app whose handler "gone" a deploy removed
    before.add(lambda event: None, "return", name="gone")
    before.add(lambda event: None, "return", name="kept")
    for r in range(3):
        deliver(before, sample_event("return.updated", return_id=f"ret-{r}", seq=0))
    after = make_hooks()
    ran: list[str] = []
    after.add(lambda event: ran.append(event.return_id), "return", name="kept")
    started = time.monotonic()
    drain(after, timeout=30)  # returns, instead of passing "gone" on for ever
    assert time.monotonic() - started < 5  # not even one pass-on's 5 s delay
    assert sorted(ran) == ["ret-0", "ret-1", "ret-2"]
    status = status_snapshot(redis, after.settings, after.registry)
    assert status.missing_handlers == {"gone": 3}
    assert status.events_waiting == 3  # kept, not lost
