"""A worker-side plugin for the tracing tests: an SDK tracer provider whose spans go to a JSON-lines file.

Load it with ``--plugin tests.support.otel_file_exporter`` and set ``PYDELAYED_TEST_SPANS`` to the file.
Each ended span is written at once (SimpleSpanProcessor), so a test can poll the file while the worker runs.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from delayed_core import hookimpl
from delayed_core.app import Delayed


def span_record(span: ReadableSpan) -> dict[str, object]:
    """The parts of a span the tests assert on, as JSON-friendly values."""
    context = span.get_span_context()
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "links": [f"{link.context.trace_id:032x}/{link.context.span_id:016x}" for link in span.links],
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": event.name, "attributes": dict(event.attributes or {})} for event in span.events],
    }


class JsonLinesExporter(SpanExporter):
    """Appends one JSON object per span to a file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            for span in spans:
                handle.write(json.dumps(span_record(span)) + "\n")
        return SpanExportResult.SUCCESS


@hookimpl
def delayed_app_created(app: Delayed) -> None:
    """Install the provider once per process (the global provider can be set only once)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(os.environ["PYDELAYED_TEST_SPANS"])))
    trace.set_tracer_provider(provider)
