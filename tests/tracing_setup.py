"""OpenTelemetry's SDK for the tracing tests: spans kept in memory, or written to a file.

The SDK is a test dependency only; django_dbq needs no more than ``opentelemetry-api``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

MEMORY = InMemorySpanExporter()


class FileExporter(SpanExporter):
    """One JSON line per span: what the process tests read back."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                parent = span.parent.span_id if span.parent else None
                out.write(
                    json.dumps(
                        {
                            "name": span.name,
                            "trace_id": span.context.trace_id,
                            "parent_id": parent,
                            "attributes": dict(span.attributes or {}),
                        }
                    )
                    + "\n"
                )
        return SpanExportResult.SUCCESS


def install() -> None:
    """Set the global tracer provider once per process (OpenTelemetry allows one)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider()
    path = os.environ.get("DBQ_TEST_SPANS_FILE")
    provider.add_span_processor(SimpleSpanProcessor(FileExporter(path) if path else MEMORY))
    trace.set_tracer_provider(provider)
