"""One trace per ride: W3C trace context on every hop, through the OpenTelemetry API.

HTTP hops carry ``traceparent`` through the FastAPI and httpx instrumentations (``acr.trace_export`` sets
them up). Events carry it in the CloudEvents distributed tracing extension (``traceparent``/``tracestate``):
recording an event opens a short producer span and stamps its context on the event; a consumer (SQS, SNS
FIFO through SQS, a Kinesis record) continues that context in its own span, so what a handler records
stays in the producer's trace.

Work that starts without a span of its own (a timer or watchdog acting on a ride, a stream processor's
batch, the simulator's telemetry thread, a reconciler) continues the trace of the ride it acts on: every
span of a ride this process saw is remembered by ride id (``RideTraces``, in memory and bounded), and an
event about that ride recorded with no current span is parented there. So that a restarted process, or a
replica that did not see the ride's last event, continues the same trace, each service's state row of a
ride also keeps the ride's context (``stored_context`` when the row is written, ``resume_stored`` when it
is read back): reading a ride's row is enough to continue its trace.

A ride keeps the trace it was booked in. A request about a ride under way that starts a trace of its own
(a rider's cancel from another device, an operator's payment retry) records the ride's events in the ride's
trace, under the ride's last span, with a link to the request's span; a span of another trace never replaces
the ride's remembered one. So every event of a ride, on every bus, carries one trace id.

Only the API is imported here (no SDK), so the envelope and the consumer stay light; without a configured
provider every span is a no-op and events get a fresh, unsampled context.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = trace.get_tracer("acr")
RIDES_REMEMBERED = 10_000


def trace_id(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a traceparent, or None if it is absent or malformed."""
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None


def current_trace_id() -> str | None:
    """The trace id of the current span (what log lines and websocket pushes show), None outside one."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class RideTraces:
    """The last span context seen for each ride, so work without a span of its own continues the ride's
    trace. Bounded: the least recently touched ride is forgotten first."""

    def __init__(self, capacity: int = RIDES_REMEMBERED) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._rides: OrderedDict[str, SpanContext] = OrderedDict()

    def remember(self, ride_id: str | None, context: SpanContext) -> None:
        """Remember ``context`` as the ride's latest span, if it is in the ride's trace or the ride has
        none yet: a span of another trace (a request about the ride that started its own) never takes the
        ride out of its trace."""
        if not ride_id or not context.is_valid or not context.trace_flags.sampled:
            return
        with self._lock:
            known = self._rides.get(ride_id)
            if known is None or known.trace_id == context.trace_id:
                self._put(ride_id, context)

    def _put(self, ride_id: str, context: SpanContext) -> None:
        self._rides[ride_id] = context
        self._rides.move_to_end(ride_id)
        while len(self._rides) > self._capacity:
            self._rides.popitem(last=False)

    def of(self, ride_id: str | None) -> SpanContext | None:
        if not ride_id:
            return None
        with self._lock:
            return self._rides.get(ride_id)

    def resume(self, ride_id: str, stored: SpanContext) -> None:
        """Remember ``stored`` (read from a state row) unless this process knows a span of the same trace:
        spans of different processes cannot be ordered, and either parent keeps the ride in its one trace
        (often the known one is the later, e.g. the consumer span of the event being handled). A different
        trace is replaced: the stored one is what every process reading the row agrees on."""
        if not stored.is_valid or not stored.trace_flags.sampled:
            return
        with self._lock:
            known = self._rides.get(ride_id)
            if known is None or known.trace_id != stored.trace_id:
                self._put(ride_id, stored)


RIDES = RideTraces()


def extract(traceparent: str | None, tracestate: str | None) -> otel_context.Context:
    """The context a CloudEvent's ``traceparent``/``tracestate`` name (the empty context when absent)."""
    carrier = {"traceparent": traceparent or ""}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier, context=otel_context.Context())


def inject(context: otel_context.Context | None = None) -> tuple[str | None, str | None]:
    """``(traceparent, tracestate)`` of ``context`` (default: the current one); tracestate None if empty."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier.get("traceparent"), carrier.get("tracestate") or None


def _ride_span(ride_id: str | None) -> tuple[SpanContext, list[Link]]:
    """The span a ride's work continues, and the links of its parent: the ride's remembered span when the
    current span is in another trace (a request about a ride under way, such as a rider's cancel, started
    its own trace: it is linked, and the ride stays in its one trace), else the current span, else the
    remembered one (work without a span of its own); an invalid context when there is neither."""
    current = trace.get_current_span().get_span_context()
    remembered = RIDES.of(ride_id)
    if remembered is None:
        return current, []
    if current.is_valid and current.trace_id != remembered.trace_id:
        return remembered, [Link(current)] if current.trace_flags.sampled else []
    return (current if current.is_valid else remembered), []


def current_context(ride_id: str | None = None) -> tuple[str | None, str | None]:
    """``(traceparent, tracestate)`` of the span a ride's work continues (``_ride_span``); ``(None, None)``
    when it is no sampled span (nothing to continue)."""
    span, _ = _ride_span(ride_id)
    if not span.is_valid or not span.trace_flags.sampled:
        return None, None
    return inject(trace.set_span_in_context(trace.NonRecordingSpan(span), otel_context.Context()))


def resume(ride_id: str | None, traceparent: str | None, tracestate: str | None) -> None:
    """Continue a ride's stored context: work without a span of its own on ``ride_id`` is parented there
    (``RideTraces.resume``: a span of the same trace this process saw itself is kept)."""
    if ride_id:
        RIDES.resume(ride_id, trace.get_current_span(extract(traceparent, tracestate)).get_span_context())


def stored_context(ride_id: str | None) -> dict[str, str]:
    """``current_context`` as attributes of the ride's state row (``traceparent``, ``tracestate``; those
    without a value left out); nothing for a row about no ride (a parked car)."""
    if not ride_id:
        return {}
    traceparent, tracestate = current_context(ride_id)
    attributes = {"traceparent": traceparent, "tracestate": tracestate}
    return {name: value for name, value in attributes.items() if value}


def resume_stored(ride_id: str | None, row: Mapping[str, Any]) -> None:
    """``resume`` the context a state row of ``ride_id`` keeps (``stored_context``), if any."""
    resume(ride_id, row.get("traceparent"), row.get("tracestate"))


def event_context(event_type: str, ride_id: str | None) -> tuple[str, str | None]:
    """``(traceparent, tracestate)`` for an event being recorded: the context of a producer span opened
    for it under the span the ride's work continues (``_ride_span``: an event about a ride is always in the
    ride's trace). An event with nothing to continue (a parked car's telemetry) gets a fresh context flagged
    not sampled, so it starts no trace downstream."""
    span, links = _ride_span(ride_id)
    if not span.is_valid and not ride_id:
        return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00", None
    parent = (
        trace.set_span_in_context(trace.NonRecordingSpan(span), otel_context.Context())
        if span.is_valid
        else None
    )
    attributes = {"messaging.operation.type": "create", "cloudevents.event_type": event_type}
    if ride_id:
        attributes["acr.ride_id"] = ride_id
    with _TRACER.start_as_current_span(
        f"create {event_type}",
        context=parent or otel_context.Context(),
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=links,
    ) as created:
        RIDES.remember(ride_id, created.get_span_context())
        traceparent, tracestate = inject()
    if traceparent is None:  # no provider: the API's spans carry no context
        traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    return traceparent, tracestate


@contextmanager
def consuming(
    *,
    event_type: str,
    event_id: str,
    traceparent: str | None,
    tracestate: str | None,
    ride_id: str | None,
    destination: str,
) -> Iterator[None]:
    """A consumer span for one event, child of the event's context; current for the block (the handler's
    events and log lines join the producer's trace)."""
    attributes = {
        "messaging.operation.type": "process",
        "messaging.destination.name": destination,
        "messaging.message.id": event_id,
        "cloudevents.event_type": event_type,
    }
    if ride_id:
        attributes["acr.ride_id"] = ride_id
    with _TRACER.start_as_current_span(
        f"process {event_type}",
        context=extract(traceparent, tracestate),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        RIDES.remember(ride_id, span.get_span_context())
        yield


@contextmanager
def publishing(destination: str, contexts: Mapping[str, tuple[str | None, str | None]]) -> Iterator[None]:
    """The relay's span around one batch sent to ``destination``, linked to each event's context
    (event id -> ``(traceparent, tracestate)``): a batch mixes rides, so it links them and is a root."""
    links = []
    for traceparent, tracestate in contexts.values():
        linked = trace.get_current_span(extract(traceparent, tracestate)).get_span_context()
        if linked.is_valid and linked.trace_flags.sampled:
            links.append(Link(linked))
    if not links:  # nothing sampled in the batch: no span
        yield
        return
    with _TRACER.start_as_current_span(
        f"send {destination}",
        context=otel_context.Context(),
        kind=SpanKind.PRODUCER,
        links=links,
        attributes={"messaging.operation.type": "send", "messaging.batch.message_count": len(contexts)},
    ):
        yield
