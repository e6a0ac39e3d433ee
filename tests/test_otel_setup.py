"""``REDO_HOOKS_OTEL``: tracing configured by the CLI, copied as the docs show it, and
``trace_id``/``span_id`` on the log lines written inside a span."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from redo_hooks import logs, tracing
from redo_hooks.testing import deliver, sample_body

from . import e2e_app
from .conftest import SECRET, MakeHooks
from .processes import CLI, ROOT, env
from .servers import serve_in_thread

APP = "tests.e2e_app:hooks"


def test_a_log_line_inside_a_span_carries_its_trace_and_span_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO", json=True)
    try:
        tracer = TracerProvider().get_tracer("test")  # not the global: nothing else sees it
        log = structlog.get_logger("redo_hooks.test")
        with tracer.start_as_current_span("work") as span:
            log.info("inside")
        log.info("outside")
    finally:
        logging_reset()
    inside, outside = (orjson.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


def logging_reset() -> None:
    structlog.reset_defaults()


def burst(redis_url: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
    environ = env(redis_url, SECRET, REDO_HOOKS_LOG_SUCCESSES="true", **extra)
    return subprocess.run(
        [*CLI, "--log-format", "json", "worker", APP, "--burst"],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_console_prints_each_handler_span_and_the_logs_name_its_trace(
    make_hooks: MakeHooks, redis_url: str
) -> None:
    hooks = make_hooks()
    for handler in e2e_app.hooks.registry:
        hooks.add(handler.func, *handler.events, name=handler.name)
    assert deliver(hooks, sample_body(return_id="ret-otel", seq=1))
    assert deliver(hooks, sample_body(return_id="ret-bad"))  # no seq: the handlers raise
    done = burst(
        redis_url,
        REDO_HOOKS_OTEL="console",
        OTEL_SERVICE_NAME="shop-workers",
        REDO_HOOKS_RETRIES="0",
    )
    assert done.returncode == 0, done.stderr.decode()
    printed = done.stdout.decode()
    assert '"name": "redo-hooks handle e2e.first"' in printed
    assert '"service.name": "shop-workers"' in printed
    succeeded = [
        orjson.loads(line)
        for line in done.stderr.splitlines()
        if line.startswith(b"{") and b"handler_succeeded" in line
    ]
    assert succeeded and all(len(line["trace_id"]) == 32 for line in succeeded)
    # What the worker logs off the handler's thread (a retry, a dead letter) too.
    others = [line for line in done.stderr.splitlines() if b"handler_failed" in line]
    assert others and all(b'"trace_id"' in line for line in others)
    assert succeeded[0]["trace_id"] in printed.replace("0x", "")


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP collector of the test's own: what arrives at /v1/traces."""
    received: list[bytes] = []

    async def traces(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    with serve_in_thread(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as url:
        yield url, received


def test_otlp_sends_the_spans_to_the_configured_endpoint(
    make_hooks: MakeHooks, redis_url: str, collector: tuple[str, list[bytes]]
) -> None:
    url, received = collector
    hooks = make_hooks()
    for handler in e2e_app.hooks.registry:
        hooks.add(handler.func, *handler.events, name=handler.name)
    assert deliver(hooks, sample_body(return_id="ret-otlp", seq=1))
    done = burst(redis_url, REDO_HOOKS_OTEL="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=url)
    assert done.returncode == 0, done.stderr.decode()
    assert any(b"redo-hooks handle e2e.first" in body for body in received)


def test_a_missing_exporter_stops_the_start_with_what_to_install(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    with pytest.raises(tracing.TracingUnavailable, match="opentelemetry-exporter-otlp-proto-http"):
        tracing.check("otlp")
    tracing.check("console")  # the SDK is there
    tracing.check("")
    refused = subprocess.run(
        [*CLI, "worker", APP, "--burst"],
        env=env(redis_url, SECRET, REDO_HOOKS_OTEL="zipkin"),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and b"otel" in refused.stderr.lower()
