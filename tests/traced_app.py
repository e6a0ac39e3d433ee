"""An app whose worker process records its spans to a file (TRACE_FILE), one JSON per line.

The OpenTelemetry SDK is configured when the module is imported, as a user's
app would do at start-up; the test reads the file to follow one trace across
the receiver (in the test process) and the worker (here).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from redo_hooks import RedoHooks, ReturnEvent


class FileExporter(SpanExporter):
    """Appends each finished span to TRACE_FILE."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(os.environ["TRACE_FILE"], "ab") as file:
            for span in spans:
                file.write(orjson.dumps(orjson.loads(span.to_json())) + b"\n")
        return SpanExportResult.SUCCESS


if os.environ.get("TRACE_FILE"):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)

hooks = RedoHooks()


@hooks.on("return.created", name="traced.ship", retries=1)
def ship(event: ReturnEvent) -> None:
    """Fails on its first attempt when the body asks, to show the retry in the trace."""
    if event.raw.get("fail_first") and not os.path.exists(os.environ["TRACE_FILE"] + ".once"):
        open(os.environ["TRACE_FILE"] + ".once", "w").close()
        raise RuntimeError("the warehouse is down")
