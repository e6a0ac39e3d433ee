"""OpenTelemetry: one trace per event, from the request to each handler run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import RedoHooks, ReturnEvent, tracing
from redo_hooks.store.keys import Keys
from redo_hooks.testing import HookTester, sample_body, sample_event

from .conftest import SECRET, MakeHooks
from .processes import env, start_workers

AUTH = {"Authorization": f"Bearer {SECRET}"}


def _reset_global_provider() -> None:
    # What OpenTelemetry's own test helpers do: the global provider may be set
    # once per process, and the other tests must not record spans.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _reset_global_provider()
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    _reset_global_provider()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def test_one_trace_from_the_request_to_each_handler_run(
    make_hooks: MakeHooks, spans: InMemorySpanExporter
) -> None:
    hooks = make_hooks()
    hooks.on("return.created", name="ship")(lambda event: None)

    @hooks.on("return", name="audit")
    async def audit(event: ReturnEvent) -> None:
        # The handler runs inside its span: its own spans are children of it.
        with trace.get_tracer("shop").start_as_current_span("audit.write"):
            pass

    with HookTester(hooks) as tester:
        assert tester.post(sample_event("return.created", return_id="ret-t")).status_code == 202
        tester.run()
    found = by_name(spans)
    [receive] = found["redo-hooks receive"]
    runs = found["redo-hooks handle ship"] + found["redo-hooks handle audit"]
    [inner] = found["audit.write"]
    assert receive.kind == SpanKind.SERVER and receive.parent is None
    assert receive.attributes[tracing.EVENT_TYPE] == "created"
    assert receive.attributes[tracing.RETURN_ID] == "ret-t"
    assert receive.attributes[tracing.OUTCOME] == "accepted"
    assert receive.attributes["http.response.status_code"] == 202
    trace_id = receive.context.trace_id
    for run in runs:
        assert run.context.trace_id == trace_id
        assert run.parent.span_id == receive.context.span_id  # a child, as documented
        assert run.kind == SpanKind.CONSUMER
        assert run.attributes[tracing.OUTCOME] == "ok"
        assert run.attributes[tracing.ATTEMPT] == 1
        assert run.attributes[tracing.RETURN_ID] == "ret-t"
        assert run.status.status_code == StatusCode.UNSET
    assert {r.attributes[tracing.HANDLER] for r in runs} == {"ship", "audit"}
    [audit_run] = found["redo-hooks handle audit"]
    assert inner.parent.span_id == audit_run.context.span_id


def test_failed_attempts_are_errors_with_the_exception_in_the_same_trace(
    make_hooks: MakeHooks, spans: InMemorySpanExporter
) -> None:
    hooks = make_hooks(retries=1)

    @hooks.on("return.created", name="flaky")
    def flaky(event: ReturnEvent) -> None:
        raise RuntimeError("no stock system")

    with HookTester(hooks) as tester:
        tester.post(sample_event("return.created", return_id="ret-e"))
        tester.run(raise_on_error=False)
    found = by_name(spans)
    [receive] = found["redo-hooks receive"]
    runs = sorted(found["redo-hooks handle flaky"], key=lambda s: s.attributes[tracing.ATTEMPT])
    assert [r.attributes[tracing.ATTEMPT] for r in runs] == [1, 2]
    assert [r.attributes[tracing.OUTCOME] for r in runs] == ["retrying", "dead_lettered"]
    for run in runs:
        assert run.context.trace_id == receive.context.trace_id
        assert run.status.status_code == StatusCode.ERROR
        [exception] = [e for e in run.events if e.name == "exception"]
        assert exception.attributes["exception.type"] == "RuntimeError"
        assert exception.attributes["exception.message"] == "no stock system"


def test_the_receive_span_joins_an_instrumented_app_or_an_incoming_traceparent(
    make_hooks: MakeHooks, spans: InMemorySpanExporter
) -> None:
    hooks = make_hooks()
    hooks.on("return.created", name="ship")(lambda event: None)
    receiver = hooks.asgi()

    async def instrumented(scope: Any, receive: Any, send: Any) -> None:
        # What an ASGI instrumentation does: a server span around the app.
        if scope["type"] != "http":
            await receiver(scope, receive, send)
            return
        with trace.get_tracer("asgi").start_as_current_span("POST /", kind=SpanKind.SERVER):
            await receiver(scope, receive, send)

    with TestClient(instrumented) as client:
        client.post("/", content=sample_body(), headers=AUTH)
    found = by_name(spans)
    [server] = found["POST /"]
    [receive] = found["redo-hooks receive"]
    assert receive.parent.span_id == server.context.span_id
    assert receive.kind == SpanKind.INTERNAL

    spans.clear()
    remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with TestClient(receiver) as client:
        client.post("/", content=sample_body(), headers={**AUTH, "traceparent": remote})
    [receive] = by_name(spans)["redo-hooks receive"]
    assert f"{receive.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{receive.parent.span_id:016x}" == "b7ad6b7169203331"


def test_refusals_are_recorded_and_a_503_is_an_error(
    make_hooks: MakeHooks, spans: InMemorySpanExporter
) -> None:
    with TestClient(make_hooks().asgi()) as client:
        client.post("/", content=sample_body(), headers={"Authorization": "Bearer nope"})
    with TestClient(make_hooks(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2).asgi()) as c:
        c.post("/", content=sample_body(), headers=AUTH)
    refused, deferred = by_name(spans)["redo-hooks receive"]
    assert refused.attributes[tracing.OUTCOME] == "rejected"
    assert refused.attributes["redo_hooks.reason"] == "wrong_bearer"
    assert refused.status.status_code == StatusCode.UNSET  # the sender's mistake, not ours
    assert deferred.attributes[tracing.OUTCOME] == "deferred"
    assert deferred.status.status_code == StatusCode.ERROR


def test_without_an_sdk_there_are_no_spans_and_nothing_is_stored(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    ran: list[str] = []
    hooks.on("return.created", name="ship")(lambda event: ran.append(event.return_id))
    body = sample_event("return.created", return_id="ret-plain")
    with HookTester(hooks) as tester:
        assert tester.post(body).status_code == 202
        stored = redis.hgetall(Keys("rh").event(tester.post(body).json()["event"]))
        tester.run()
    assert ran == ["ret-plain"]
    assert b"tp" not in stored


def test_without_the_api_installed_it_works_the_same(
    make_hooks: MakeHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing, "trace", None)  # as if opentelemetry-api were absent
    assert not tracing.enabled()
    hooks = make_hooks()
    ran: list[str] = []
    hooks.on("return.created", name="ship")(lambda event: ran.append(event.return_id))
    with HookTester(hooks) as tester:
        assert tester.post(sample_event("return.created", return_id="ret-noapi")).status_code == 202
        tester.run()
    assert ran == ["ret-noapi"]


@pytest.mark.slow
def test_the_trace_crosses_into_a_real_worker_process_and_its_retries(
    redis_url: str, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    trace_file = tmp_path / "spans.jsonl"
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET])
    hooks.on("return.created", name="traced.ship", retries=1)(lambda event: None)
    with TestClient(hooks.asgi()) as client:
        body = sample_event("return.created", return_id="ret-x", fail_first=True)
        assert client.post("/", content=orjson.dumps(body), headers=AUTH).status_code == 202
    [receive] = by_name(spans)["redo-hooks receive"]
    environ = env(redis_url, SECRET, TRACE_FILE=str(trace_file), REDO_HOOKS_BACKOFF="0")
    worker = start_workers("tests.traced_app:hooks", environ, "--burst")
    assert worker.wait(timeout=120) == 0
    runs = [orjson.loads(line) for line in trace_file.read_bytes().splitlines()]
    runs.sort(key=lambda s: s["attributes"][tracing.ATTEMPT])
    assert [r["attributes"][tracing.OUTCOME] for r in runs] == ["retrying", "ok"]
    for run in runs:
        assert run["context"]["trace_id"] == f"0x{receive.context.trace_id:032x}"
        assert run["parent_id"] == f"0x{receive.context.span_id:016x}"
