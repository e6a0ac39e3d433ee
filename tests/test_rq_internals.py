"""What redo-hooks relies on of RQ's internals (``store/rq_internals.py``), checked.

Run against the pinned rq by the suite, and against the newest rq 2.x by
``scripts/check-rq-upgrade``: any change that breaks an assumption fails here.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus, Retry
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.suspension import resume, suspend
from rq.timeouts import TimerDeathPenalty

from redo_hooks import ReturnEvent
from redo_hooks.dispatch.lanes import run_lane
from redo_hooks.dispatch.rq_worker import IDLE_WAIT, WorkerBase, forget_ended
from redo_hooks.store.rq_internals import (
    CRASH_RETRIES,
    JOB_KEY_PREFIX,
    LANE_FUNC,
    NO_TIMEOUT,
    QUEUE_KEY_PREFIX,
    QUEUES_KEY,
    RESULT_TTL,
    RQ_MAJOR,
    lane_job,
    queued_fields,
)
from redo_hooks.store.rq_registries import (
    abandon,
    live_job_keys,
    registry_counts,
    schedule,
    scheduled_key,
    started_key,
    vouch,
)
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from .conftest import MakeHooks

DATA = Path(__file__).parent / "data"
#: The queue and its quarantine: a parent vouches for its child's executions in either.
QUEUES = ["redo-hooks", "redo-hooks-quarantine"]
VOLATILE = {b"created_at", b"enqueued_at"}


def handler(event: object) -> None: ...


def test_the_lua_written_job_matches_queue_enqueue(make_hooks: MakeHooks, redis: Redis) -> None:
    hooks = make_hooks()
    hooks.add(handler, "return", name="h")
    assert deliver(hooks, sample_body(return_id="ret-1"))
    (raw_id,) = redis.lrange("rq:queue:redo-hooks", 0, -1)
    ours_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    ours = redis.hgetall(f"rq:job:{ours_id}")

    queue = Queue("redo-hooks", connection=redis)
    theirs_job = queue.enqueue(
        LANE_FUNC,
        args=("h",),
        job_id="reference",
        job_timeout=NO_TIMEOUT,
        result_ttl=RESULT_TTL,
        retry=Retry(max=CRASH_RETRIES),
        description="lanes of h",
    )
    theirs = redis.hgetall(theirs_job.key)
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in VOLATILE} == {
        k: v for k, v in theirs.items() if k not in VOLATILE
    }
    job = Job.fetch(ours_id, connection=redis)
    assert job.func_name == LANE_FUNC and job.args == ("h",)
    assert redis.lrange(f"rh:joblanes:{ours_id}", 0, -1) == [b"ret-1"]
    assert job.get_status() == "queued" and job.retries_left == CRASH_RETRIES
    assert b"rq:queue:redo-hooks" in redis.smembers("rq:queues")


# -- Each assumption of redo_hooks/store/rq_internals.py, numbered as there. --


def test_1_the_queued_status_and_key_prefixes_are_where_the_ingest_script_writes_them(
    redis: Redis,
) -> None:
    job = lane_job(redis, "q", "h", job_id="probe")
    fields = dict(zip(*[iter(queued_fields(job))] * 2, strict=True))
    assert fields["status"] == JobStatus.QUEUED.value
    assert (JOB_KEY_PREFIX, QUEUE_KEY_PREFIX, QUEUES_KEY) == ("rq:job:", "rq:queue:", "rq:queues")
    assert job.key == f"{JOB_KEY_PREFIX}probe"


def test_2_the_lane_function_is_the_stable_name_and_resolves_to_the_lane_runner() -> None:
    assert LANE_FUNC == "redo_hooks.jobs.run_lane"
    module, _, name = LANE_FUNC.rpartition(".")
    assert getattr(importlib.import_module(module), name) is run_lane


def test_2_a_queued_and_a_scheduled_job_of_release_0_2_0_run_after_the_upgrade(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Redis as release 0.2.0 (rq 2.12) left it: one lane in a queued job, one in a scheduled one.

    Its jobs carry RQ's 300 s timeout (this release's: none) and wait for the
    promoter of 0.2, which this release's atomic one replaces.
    """
    load_fixture(redis, "release-0.2.0-redis.json")
    assert redis.zcard("rq:scheduled:redo-hooks") == 1
    seen: list[tuple[str, str]] = []
    hooks = make_hooks()

    @hooks.on("return", name="upgrade.handler")
    def record(event: ReturnEvent) -> None:
        seen.append((event.return_id, str(event.type)))

    assert drain(hooks) == 2
    assert sorted(seen) == [
        ("ret-up-2", "created"),
        ("ret-up-2", "updated"),
        ("ret-up-3", "created"),
    ]
    assert [s for s in seen if s[0] == "ret-up-2"] == [
        ("ret-up-2", "created"),
        ("ret-up-2", "updated"),
    ]
    for subject in ("ret-up-2", "ret-up-3"):
        assert redis.llen(f"rh:lane:upgrade.handler:{subject}") == 0
    assert redis.zcard("rq:failed:redo-hooks") == 0
    assert redis.zcard("rq:scheduled:redo-hooks") == 0


def load_fixture(redis: Redis, name: str) -> None:
    """Write the keys of a release's Redis, as ``tests/data/<name>`` recorded them."""
    for key, entry in orjson.loads((DATA / name).read_bytes()).items():
        value = entry["value"]
        if entry["type"] == "hash":
            redis.hset(key, mapping={f: bytes.fromhex(v) for f, v in value.items()})
        elif entry["type"] == "list":
            redis.rpush(key, *(bytes.fromhex(v) for v in value))
        elif entry["type"] == "set":
            redis.sadd(key, *(bytes.fromhex(v) for v in value))
        elif entry["type"] == "zset":
            redis.zadd(key, {bytes.fromhex(m): s for m, s in value})
        else:
            redis.set(key, bytes.fromhex(value))


def test_3_registry_schedule_ignores_the_pipeline_in_rq_2_so_ours_repeats_the_zadd(
    redis: Redis,
) -> None:
    queue = Queue("redo-hooks", connection=redis)
    job = lane_job(redis, queue.name, "h", job_id="later")
    when = datetime.now(UTC) + timedelta(hours=1)
    with redis.pipeline(transaction=True) as pipe:
        registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        registry.schedule(job, when, pipeline=pipe)
        pipe.reset()  # never executed...
    # ...yet rq 2 scheduled the job: it wrote outside the transaction. rq 3
    # honours the pipeline. Either way schedule() commits with the pipeline,
    # keeping the fraction of a second RQ truncates.
    written_outside = redis.zscore(scheduled_key(queue), "later") is not None
    assert written_outside == (RQ_MAJOR < 3)
    redis.delete(scheduled_key(queue))
    with redis.pipeline(transaction=True) as pipe:
        schedule(queue, job, when, pipe)
        pipe.execute()
    assert redis.zscore(scheduled_key(queue), "later") == when.timestamp()


def _parameters(method: Callable[..., object]) -> list[str]:
    return list(inspect.signature(method).parameters)


def test_4_the_worker_hooks_we_override_keep_their_names_and_signatures(redis: Redis) -> None:
    # rq 3 adds working_time (with a default): WorkerBase takes it and ignores it.
    assert _parameters(SimpleWorker.get_heartbeat_ttl)[:2] == ["self", "job"]
    assert _parameters(SimpleWorker.get_heartbeat_ttl)[2:] == (
        [] if RQ_MAJOR < 3 else ["working_time"]
    )
    # rq 3 passes the time worked, by keyword; ours ignores it.
    ours = WorkerBase([Queue("redo-hooks", connection=redis)], connection=redis)
    job = lane_job(redis, "redo-hooks", "h", job_id="beating")
    assert ours.get_heartbeat_ttl(job) == ours.get_heartbeat_ttl(job, working_time=3.0) == 20
    # SimpleWorker asks get_heartbeat_ttl for the running job's heartbeat.
    assert "get_heartbeat_ttl" in inspect.getsource(SimpleWorker.maintain_heartbeats)


def test_4_the_public_methods_our_loop_calls_keep_their_signatures() -> None:
    """The loop (``WorkerBase.run``) calls these where ``Worker.work()`` would."""
    assert _parameters(SimpleWorker.execute_job) == ["self", "job", "queue"]
    # rq 3 hands the execution in; rq 2 reads self.execution.
    assert _parameters(SimpleWorker.maintain_heartbeats) == (
        ["self", "job"] if RQ_MAJOR < 3 else ["self", "job", "execution"]
    )
    assert _parameters(SimpleWorker.heartbeat) == ["self", "timeout", "pipeline"]
    assert _parameters(SimpleWorker.register_birth) == ["self"]
    assert _parameters(SimpleWorker.register_death) == ["self"]
    assert _parameters(SimpleWorker.set_state)[:2] == ["self", "state"]
    assert "exc_string" in _parameters(SimpleWorker.handle_job_failure)
    assert _parameters(Queue.dequeue_any) == [
        "queues",
        "timeout",
        "connection",
        "job_class",
        "serializer",
        "death_penalty_class",
    ]
    assert isinstance(
        inspect.getattr_static(SimpleWorker, "should_run_maintenance_tasks"), property
    )
    # What work() does besides: the loop does the same (or, for the pubsub
    # command channel and the scheduler, leaves it out on purpose).
    work = inspect.getsource(SimpleWorker.work) + inspect.getsource(SimpleWorker.bootstrap)
    for step in (
        "self.register_birth()",
        "self.set_state(WorkerStatus.STARTED)",
        "self.check_for_suspension(burst)",
        "self.run_maintenance_tasks()",
        "self.dequeue_job_and_maintain_ttl(",
        "self.execute_job(job, queue)",
        "self.heartbeat()",
        "self.teardown()",
    ):
        assert step in work, step


def noop() -> None:
    """A plain RQ job's function."""


def _run_in_thread(worker: WorkerBase, **options: Any) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs=options, daemon=True)
    thread.start()
    return thread


def test_5_the_loop_runs_a_job_and_stops_at_the_flag_within_one_wait(redis: Redis) -> None:
    """No exception is raised into a thread to stop it (RQ's signal handler did that,
    wherever the thread was): a flag, seen between jobs and between 1 s waits."""
    queue = Queue("redo-hooks", connection=redis)
    queue.enqueue(noop, job_id="plain")
    worker = WorkerBase([queue], connection=redis)
    worker.in_thread()  # a job slot: not the main thread, no signal handler
    assert worker.death_penalty_class is TimerDeathPenalty
    thread = _run_in_thread(worker)
    wait_for(lambda: worker.jobs_run == 1, 10, "the job to run")
    assert redis.sismember("rq:workers:redo-hooks", worker.key)  # registered with RQ
    assert worker.pubsub_thread is None  # no command channel: a stop is a signal or the flag
    worker.stop_soon()
    thread.join(timeout=IDLE_WAIT + 10)  # a bound on a hang, not a speed
    assert not thread.is_alive()
    assert not redis.sismember("rq:workers:redo-hooks", worker.key)  # its death registered


def test_5_a_burst_run_ends_when_the_queue_is_empty_and_counts_its_jobs(redis: Redis) -> None:
    queue = Queue("redo-hooks", connection=redis)
    for n in range(3):
        queue.enqueue(noop, job_id=f"plain-{n}")
    worker = WorkerBase([queue], connection=redis)
    assert worker.run(burst=True, max_jobs=2) is True
    assert worker.jobs_run == 2 and queue.count == 1
    assert worker.run(burst=True) is True
    assert worker.jobs_run == 3 and queue.count == 0
    assert worker.run(burst=True) is False


def test_5_rq_suspend_pauses_the_loop_between_jobs(redis: Redis) -> None:
    queue = Queue("redo-hooks", connection=redis)
    queue.enqueue(noop, job_id="paused")
    suspend(redis)
    worker = WorkerBase([queue], connection=redis)
    assert worker.run(burst=True) is False  # a burst run leaves, as RQ's does
    assert queue.count == 1
    thread = _run_in_thread(worker)  # suspended: it waits, then takes up the job
    resume(redis)
    wait_for(lambda: worker.jobs_run == 1, 10, "the job to run once resumed")
    worker.stop_soon()
    thread.join(timeout=IDLE_WAIT + 10)
    assert not thread.is_alive() and queue.count == 0


def test_6_the_maintenance_lock_and_the_intermediate_queue_are_as_we_use_them(
    redis: Redis,
) -> None:
    queue = Queue("redo-hooks", connection=redis)
    assert queue.acquire_maintenance_lock()
    assert 890 < redis.ttl(queue.registry_cleaning_key) <= 899
    # Ours takes the same key: the two exclude each other.
    worker = WorkerBase([queue], connection=redis)
    assert not worker.take_maintenance_lock(queue)
    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
    worker.lock_ttl = 12
    assert worker.take_maintenance_lock(queue)
    assert 0 < redis.ttl(queue.registry_cleaning_key) <= 12  # a dead holder's lock: 12 s
    assert not queue.acquire_maintenance_lock()
    queue.release_maintenance_lock()  # type: ignore[no-untyped-call]
    intermediate = queue.intermediate_queue
    for name in ("get_job_ids", "get_first_seen", "set_first_seen", "remove"):
        assert callable(getattr(intermediate, name))
    # Ours repeats RQ's steps (to hold the intermediate list's back): the same
    # ones, but for the exception handlers RQ passes: a lane worker has none.
    rqs = inspect.getsource(SimpleWorker.clean_registries)
    assert "clean_registries(queue, self._exc_handlers)" in rqs
    assert "clean_registries(queue)" in inspect.getsource(WorkerBase.run_maintenance)
    assert worker._exc_handlers == []
    for step in (
        "clean_worker_registry(queue)",
        "queue.intermediate_queue.cleanup(self, queue)",
        "self.last_cleaned_at = now()",
    ):
        assert step in rqs, step
        assert step in inspect.getsource(WorkerBase.run_maintenance), step
    # RQ's other periodic step is the scheduler's (we run none) and groups' (we make none).
    periodic = inspect.getsource(SimpleWorker.run_maintenance_tasks)
    assert "self.clean_registries()" in periodic and "self.scheduler" in periodic


def test_7_registry_counts_read_without_the_cleanup_that_count_does(redis: Redis) -> None:
    queue = Queue("redo-hooks", connection=redis)
    job = queue.enqueue(LANE_FUNC, args=("h",), job_id="abandoned")
    started = StartedJobRegistry(queue=queue)
    redis.zadd(started.key, {"abandoned:exec-1": 1})  # heartbeat long expired
    before = redis.zrange(started.key, 0, -1)
    counts = registry_counts(redis, queue)
    assert counts["running"] == 1
    assert redis.zrange(started.key, 0, -1) == before  # read-only
    started.count  # noqa: B018  rq's count cleans the registry as a side effect...
    assert redis.zrange(started.key, 0, -1) != before  # ...which is why we don't use it
    assert job.id == "abandoned"
    # A job a worker took, not started yet, is counted from RQ's intermediate list.
    assert live_job_keys("redo-hooks")[1] == queue.intermediate_queue.key


def test_10_success_handling_reads_every_listed_execution(redis: Redis) -> None:
    parameters = ["self", "job", "queue", "started_job_registry"]
    # rq 3 also hands in the execution that ran.
    assert _parameters(SimpleWorker.handle_job_success) == (
        parameters if RQ_MAJOR < 3 else [*parameters, "execution"]
    )
    # RQ fetches each listed execution (and raises for one whose hash expired):
    # rq 2 on success, rq 3 when the finished job is deleted (result_ttl 0).
    assert "Execution.fetch" in inspect.getsource(
        importlib.import_module("rq.executions").ExecutionRegistry.get_executions
    )
    job = lane_job(redis, "redo-hooks", "h", job_id="rescued")
    assert job.execution_registry.key == "rq:executions:rescued"


def test_11_an_execution_s_heartbeat_is_what_the_parent_renews_and_ends(redis: Redis) -> None:
    """A real execution, made by RQ: vouch renews exactly what RQ's heartbeat renews."""
    assert _parameters(SimpleWorker.prepare_execution) == ["self", "job"]
    queue = Queue("redo-hooks", connection=redis)
    job = lane_job(redis, "redo-hooks", "h", job_id="vouched")
    job.save()
    worker = WorkerBase([queue], connection=redis)
    worker.heartbeat_ttl = 5
    worker.runs_key = "rh:runs:p1"
    execution = worker.prepare_execution(job)
    member = execution.composite_key
    assert started_key("redo-hooks") == queue.started_job_registry.key
    assert redis.smembers("rh:runs:p1") == {member.encode()}
    # What RQ's cleanup reads to call the job abandoned: the registry's score.
    first = redis.zscore(started_key("redo-hooks"), member)
    assert first is not None
    assert vouch(redis, "rh:runs:p1", QUEUES, 100, now=first + 50) == 1
    assert redis.zscore(started_key("redo-hooks"), member) == first + 150
    assert redis.zscore(job.execution_registry.key, execution.id) == first + 210
    assert 95 <= redis.ttl(execution.key) <= 100
    assert 0 < redis.ttl("rh:runs:p1") <= 1000
    # An execution that ended meanwhile is not brought back.
    redis.zrem(started_key("redo-hooks"), member)
    vouch(redis, "rh:runs:p1", QUEUES, 100, now=first)
    assert redis.zscore(started_key("redo-hooks"), member) is None
    redis.zadd(started_key("redo-hooks"), {member: first})
    # The process died: the heartbeat has ended, for RQ's next cleanup.
    assert abandon(redis, "rh:runs:p1", QUEUES) == ["vouched"]
    assert redis.zscore(started_key("redo-hooks"), member) == 0
    assert not redis.exists("rh:runs:p1")
    assert queue.started_job_registry.get_expired_job_ids() == ["vouched"]


def test_11_an_execution_left_listed_by_a_lost_connection_is_unlisted(redis: Redis) -> None:
    """Else the parent would vouch for a job nobody runs, and it would never run again."""
    queue = Queue("redo-hooks", connection=redis)
    job = lane_job(redis, "redo-hooks", "h", job_id="running")
    job.save()
    worker = WorkerBase([queue], connection=redis)
    worker.runs_key = "rh:runs:p2"
    running = worker.prepare_execution(job).composite_key
    redis.sadd("rh:runs:p2", "lost:0123")  # its SREM never reached Redis
    assert forget_ended(redis, "rh:runs:p2") == 1
    assert redis.smembers("rh:runs:p2") == {running.encode()}


def test_6_a_lock_its_holder_died_with_is_released_by_the_holder_s_parent(redis: Redis) -> None:
    queue = Queue("redo-hooks", connection=redis)
    worker = WorkerBase([queue], connection=redis)
    worker.lock_holder = "rh:runs:dead"
    assert worker.take_maintenance_lock(queue)
    assert redis.get(queue.registry_cleaning_key) == b"rh:runs:dead"
    abandon(redis, "rh:runs:other", QUEUES)  # not the holder: kept
    assert redis.exists(queue.registry_cleaning_key)
    abandon(redis, "rh:runs:dead", QUEUES)
    assert not redis.exists(queue.registry_cleaning_key)
