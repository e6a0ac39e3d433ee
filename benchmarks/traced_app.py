"""bench_app's receiver with the OpenTelemetry SDK configured: spans recorded, then dropped.

What tracing costs the receiver once an application turns it on, without the
cost of any particular exporter (``benchmarks/ingest.py --tracing``).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.bench_app import hooks


class DropExporter(SpanExporter):
    """Takes the spans and sends them nowhere."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(DropExporter()))
trace.set_tracer_provider(provider)

__all__ = ["hooks"]
