"""The OpenTelemetry SDK of a service process: one tracer provider, named after the service, whose spans go
to an in-memory ring (``GET /v1/ops/spans``; the embedded stack has no collector) and, when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, to that OTLP/HTTP
endpoint in batches. It also instruments the HTTP hops: the services' httpx clients (``traced``) inject
``traceparent``, each app's server spans continue it (``instrument_app``).

Kept apart from ``acr.tracing`` (API only) so that only the skeleton and the ops routes load the SDK.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

RING_SIZE = 5000
# Routes whose server spans would only be noise: probes, scrapes and the ops views (reading the spans
# must not add spans).
NOT_TRACED = "/healthz,/metrics,/v1/ops/,/ops/"


class RecentSpans(SpanExporter):
    """The last ``capacity`` finished spans of this process, searchable by trace id."""

    def __init__(self, capacity: int = RING_SIZE) -> None:
        self._lock = threading.Lock()
        self._spans: deque[ReadableSpan] = deque(maxlen=capacity)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of ``trace_id``, and those that link to it (the relay's batch sends), oldest first."""
        wanted = int(trace_id, 16)
        with self._lock:
            spans = list(self._spans)
        found = [
            s
            for s in spans
            if s.context is not None
            and (s.context.trace_id == wanted or any(link.context.trace_id == wanted for link in s.links))
        ]
        return [span_json(s) for s in sorted(found, key=lambda s: s.start_time or 0)]


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def span_json(span: ReadableSpan) -> dict[str, Any]:
    """One span as ``/v1/ops/spans`` answers it (times in epoch microseconds)."""
    context = span.context
    assert context is not None  # a finished SDK span always has one
    return {
        "traceId": _hex(context.trace_id, 32),
        "spanId": _hex(context.span_id, 16),
        "parentSpanId": _hex(span.parent.span_id, 16) if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get(SERVICE_NAME),
        "startUs": (span.start_time or 0) // 1000,
        "endUs": (span.end_time or 0) // 1000,
        "status": span.status.status_code.name,
        "attributes": {k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int | float)},
        "links": [
            {"traceId": _hex(link.context.trace_id, 32), "spanId": _hex(link.context.span_id, 16)}
            for link in span.links
        ],
    }


class NoOrphanClientCalls(Sampler):
    """The root sampler: a client call made outside any span (a health probe, an ops fan-out) starts no
    trace; every other root (a request, a relay batch, a ride's first event) is sampled."""

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        chosen = ALWAYS_OFF if kind == SpanKind.CLIENT else ALWAYS_ON
        result = chosen.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        return SamplingResult(result.decision, result.attributes, result.trace_state)

    def get_description(self) -> str:
        return "NoOrphanClientCalls"


RECENT = RecentSpans()
_lock = threading.Lock()
_provider: TracerProvider | None = None


def otlp_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def configure(service: str) -> TracerProvider:
    """The process's tracer provider, made on the first call; later calls (tests that build several apps
    in one process) get the same one."""
    global _provider
    with _lock:
        if _provider is None:
            provider = TracerProvider(
                resource=Resource.create({SERVICE_NAME: service}), sampler=ParentBased(NoOrphanClientCalls())
            )
            provider.add_span_processor(SimpleSpanProcessor(RECENT))
            if otlp_endpoint():
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(provider)
            _provider = provider
        return _provider


HttpClient = TypeVar("HttpClient", httpx.Client, httpx.AsyncClient)


def traced(client: HttpClient) -> HttpClient:
    """``client`` with a client span and W3C trace context on each request: the services' own clients to
    one another. Only those, not every httpx client of the process: a client span outside any span is not
    sampled, and its ``traceparent`` would tell the callee not to trace either, so a plain client of the same
    process (a test harness booking rides) must send none."""
    HTTPXClientInstrumentor.instrument_client(client)
    return client


def instrument_app(app: FastAPI, service: str) -> None:
    """Server spans for ``app``'s requests, continuing the caller's ``traceparent``."""
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=configure(service), excluded_urls=NOT_TRACED, exclude_spans=["receive", "send"]
    )
