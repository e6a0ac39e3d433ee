"""OpenTelemetry tracing, when ``opentelemetry-api`` is installed (``redo-hooks[otel]``).

One trace per event: a span for the request that received it, and a span for
each handler run, in the same trace. The request's trace context (W3C
``traceparent``) is stored with the event, and each handler run's span is a
**child** of the receiving span: a run is part of handling that request (it
is what the request was for), and a child puts receive and every run, retries
and replays included, under one trace id where a tracing UI shows them
together. A link would leave each run in its own trace, which only pays when
one run serves many requests (a batch); here each run serves exactly one.

Spans are recorded only once the application configures an OpenTelemetry SDK
(a ``TracerProvider``); until then, and without the API installed, the
tracing code is skipped after one check of the global provider.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

try:  # the optional extra
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised by an environment without it
    trace = None  # type: ignore[assignment]

#: The instrumentation scope of redo-hooks' spans.
SCOPE = "redo_hooks"

# Attribute names: redo-hooks' own namespace.
EVENT_TYPE = "redo_hooks.event.type"
RETURN_ID = "redo_hooks.return.id"
STORE = "redo_hooks.store"
HANDLER = "redo_hooks.handler"
ATTEMPT = "redo_hooks.attempt"
OUTCOME = "redo_hooks.outcome"
EVENT_KEY = "redo_hooks.event.key"


def enabled() -> bool:
    """Whether spans can be recorded: the API is installed and an SDK is configured.

    Without a configured ``TracerProvider`` the API would hand out no-op
    spans, yet starting one (context, propagation) still costs CPU on every
    request (``benchmarks/ingest.py --tracing``): skip it all instead. The
    check follows a provider set later (it reads the global each time).
    """
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@contextlib.contextmanager
def receiving(headers: Iterable[tuple[bytes, bytes]]) -> Iterator[Any]:
    """The span of one webhook request: a child of the current span if the ASGI app is
    instrumented, else of a ``traceparent`` the request carries, else a new trace."""
    if not enabled():
        yield None
        return
    tracer = trace.get_tracer(SCOPE)
    if trace.get_current_span().get_span_context().is_valid:
        with tracer.start_as_current_span(
            "redo-hooks receive", kind=SpanKind.INTERNAL, record_exception=False
        ) as span:
            yield span
        return
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
    with tracer.start_as_current_span(
        "redo-hooks receive",
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        record_exception=False,
    ) as span:
        yield span


def traceparent(span: Any) -> str:
    """The W3C ``traceparent`` of ``span`` to store with the event ('' if not recording)."""
    if span is None or not span.is_recording():
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


@contextlib.contextmanager
def handling(stored: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """The span of one handler run: a child of the stored ``traceparent`` (if any)."""
    if not enabled():
        yield None
        return
    context = propagate.extract({"traceparent": stored}) if stored else None
    with trace.get_tracer(SCOPE).start_as_current_span(
        f"redo-hooks handle {attributes.get(HANDLER, '')}",
        context=context,
        kind=SpanKind.CONSUMER,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def annotate(span: Any, attributes: Mapping[str, Any]) -> None:
    """Set ``attributes`` on ``span`` if it records (values of ``None`` are left out)."""
    if span is not None and span.is_recording():
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})


def failed(span: Any, error: BaseException | None, description: str) -> None:
    """Mark ``span`` as failed: the exception recorded, the status ERROR."""
    if span is None or not span.is_recording():
        return
    if error is not None:
        span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, description))


#: ``REDO_HOOKS_OTEL``'s values: the exporter each means.
EXPORTERS = ("console", "otlp")


class TracingUnavailable(ImportError):
    """``REDO_HOOKS_OTEL`` asks for an exporter whose package is not installed."""


def check(mode: str) -> None:
    """Raise :class:`TracingUnavailable`, saying what to install, unless ``mode`` can run."""
    if not mode:
        return
    needed = [("opentelemetry.sdk.trace", "opentelemetry-sdk")]
    if mode == "otlp":
        needed.append(
            ("opentelemetry.exporter.otlp.proto.http", "opentelemetry-exporter-otlp-proto-http")
        )
    for module, package in needed:
        try:
            __import__(module)
        except ImportError:
            raise TracingUnavailable(
                f"REDO_HOOKS_OTEL={mode} needs {package}: pip install 'redo-hooks[otel]' {package}"
            ) from None


def setup(mode: str, service: str) -> bool:
    """Configure an OpenTelemetry SDK for this process, as ``REDO_HOOKS_OTEL`` says.

    ``console``: spans printed to stdout; ``otlp``: sent over OTLP/HTTP to
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter's own variables apply:
    headers, timeout). ``OTEL_SERVICE_NAME`` names the service, else
    ``service``. Batched; flushed when the process exits. Returns whether
    an SDK was configured (``mode`` empty: the app configures its own, or none).
    """
    if not mode:
        return False
    check(mode)
    # (optional packages, imported only when asked for)
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def shutdown() -> None:
    """Export the spans still batched and stop the exporter, if :func:`setup` set one.

    A worker process may end without running ``atexit`` hooks (its parent
    reaps it): the last handler runs' spans would be lost.
    """
    if trace is None:
        return
    provider = trace.get_tracer_provider()
    ending = getattr(provider, "shutdown", None)
    if callable(ending):
        ending()
