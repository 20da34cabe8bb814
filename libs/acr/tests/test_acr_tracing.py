"""Trace context through events: a recorded CloudEvent carries the current span's trace, a consumer span is
its child, span-less work on a ride continues the ride's trace, and the ring answers by trace id."""

from __future__ import annotations

import secrets

import pytest
from opentelemetry import trace

from acr import catalog, trace_export, tracing
from acr.catalog.ride import RideUpdated

trace_export.configure("acr-tests")
TRACER = trace.get_tracer("acr-tests")


def _updated(ride_id: str) -> RideUpdated:
    return RideUpdated(ride_id=ride_id, rider_id="rdr_1", version=1, ride={"status": "REQUESTED"})


def _ids(traceparent: str | None) -> tuple[str, str]:
    assert traceparent is not None
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def test_a_recorded_event_carries_the_trace_of_the_current_span() -> None:
    with TRACER.start_as_current_span("booking") as span:
        event = catalog.record(_updated(f"ride_{secrets.token_hex(4)}"), subject="ride")
        expected = format(span.get_span_context().trace_id, "032x")
    trace_id, _ = _ids(event.traceparent)
    assert trace_id == expected
    (created,) = [s for s in trace_export.RECENT.of_trace(trace_id) if s["name"].startswith("create ")]
    assert created["kind"] == "PRODUCER" and event.traceparent.split("-")[2] == created["spanId"]


def test_the_tracestate_of_the_context_travels_with_the_event() -> None:
    parent = tracing.extract(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01", "acme=rides")
    with TRACER.start_as_current_span("upstream", context=parent):
        event = catalog.record(_updated(f"ride_{secrets.token_hex(4)}"), subject="ride")
    assert event.tracestate == "acme=rides"


def test_a_consumer_span_is_a_child_of_the_event_and_what_it_records_stays_in_the_trace() -> None:
    with TRACER.start_as_current_span("booking"):
        event = catalog.record(_updated(f"ride_{secrets.token_hex(4)}"), subject="ride")
    trace_id, producer_span = _ids(event.traceparent)
    with tracing.consuming(
        event_type=event.type,
        event_id=event.id,
        traceparent=event.traceparent,
        tracestate=event.tracestate,
        ride_id=None,
        destination="acr-test-queue",
    ):
        consumer = trace.get_current_span().get_span_context()
        caused = catalog.record(_updated(f"ride_{secrets.token_hex(4)}"), subject="ride")
    assert format(consumer.trace_id, "032x") == trace_id
    (span,) = [s for s in trace_export.RECENT.of_trace(trace_id) if s["kind"] == "CONSUMER"]
    assert span["parentSpanId"] == producer_span
    assert _ids(caused.traceparent)[0] == trace_id


def test_work_without_a_span_continues_the_trace_of_the_ride_it_acts_on() -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    with TRACER.start_as_current_span("booking"):
        first = catalog.record(_updated(ride_id), subject=ride_id)
    later = catalog.record(_updated(ride_id), subject=ride_id)  # a watchdog's tick: no current span
    other = catalog.record(_updated(f"ride_{secrets.token_hex(4)}"), subject="ride")
    assert _ids(later.traceparent)[0] == _ids(first.traceparent)[0]
    assert _ids(other.traceparent)[0] != _ids(first.traceparent)[0]


def test_a_request_about_a_ride_under_way_records_in_the_rides_trace_and_links_its_own() -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    with TRACER.start_as_current_span("booking"):
        booked = catalog.record(_updated(ride_id), subject=ride_id)
    with TRACER.start_as_current_span("a rider's cancel, in a trace of its own") as request:
        cancelled = catalog.record(_updated(ride_id), subject=ride_id)
        stored = tracing.stored_context(ride_id)
        own = request.get_span_context()
    ride_trace = _ids(booked.traceparent)[0]
    assert _ids(cancelled.traceparent)[0] == ride_trace
    assert _ids(stored["traceparent"])[0] == ride_trace  # what its row keeps, too
    (created,) = [
        s for s in trace_export.RECENT.of_trace(ride_trace) if s["spanId"] == _ids(cancelled.traceparent)[1]
    ]
    assert created["parentSpanId"] == _ids(booked.traceparent)[1]
    linked = trace_export.RECENT.of_trace(format(own.trace_id, "032x"))
    assert created["spanId"] in {s["spanId"] for s in linked}  # found from the request's trace by its link

    with tracing.consuming(  # an event of another trace about the ride does not take it out of its trace
        event_type=booked.type,
        event_id="e-1",
        traceparent=f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        tracestate=None,
        ride_id=ride_id,
        destination="acr-test-queue",
    ):
        caused = catalog.record(_updated(ride_id), subject=ride_id)
    assert _ids(caused.traceparent)[0] == ride_trace


def test_an_event_with_nothing_to_continue_is_not_sampled() -> None:
    from acr.envelope import new_event

    event = new_event(type="acme.acr.car.CarTelemetry", source="car-simulator", subject="car_1", data={})
    assert event.traceparent is not None and event.traceparent.endswith("-00")
    assert trace_export.RECENT.of_trace(_ids(event.traceparent)[0]) == []


def test_the_relay_send_span_links_the_events_it_carries() -> None:
    with TRACER.start_as_current_span("booking"):
        event = catalog.record(_updated(f"ride_{secrets.token_hex(4)}"), subject="ride")
    with tracing.publishing("bus:acr-bus", {event.id: (event.traceparent, event.tracestate)}):
        pass
    trace_id, span_id = _ids(event.traceparent)
    (send,) = [s for s in trace_export.RECENT.of_trace(trace_id) if s["name"] == "send bus:acr-bus"]
    assert send["traceId"] != trace_id and send["links"] == [{"traceId": trace_id, "spanId": span_id}]


def test_a_ride_row_keeps_the_context_of_the_span_that_writes_it() -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    parent = tracing.extract(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01", "acme=rides")
    with TRACER.start_as_current_span("consumer", context=parent) as span:
        stored = tracing.stored_context(ride_id)
        expected, _ = tracing.inject()
    assert stored == {"traceparent": expected, "tracestate": "acme=rides"}
    assert _ids(stored["traceparent"])[1] == format(span.get_span_context().span_id, "016x")


def test_without_a_current_span_a_row_keeps_the_rides_remembered_context() -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    with TRACER.start_as_current_span("booking"):
        first = catalog.record(_updated(ride_id), subject=ride_id)
    assert tracing.current_context(ride_id) == (first.traceparent, None)  # the producer span's
    assert tracing.stored_context(f"ride_{secrets.token_hex(4)}") == {}  # a ride never seen: nothing
    with TRACER.start_as_current_span("heartbeat"):
        assert tracing.stored_context(None) == {}  # a row about no ride (a parked car) keeps nothing


def test_an_unsampled_context_is_not_stored() -> None:
    unsampled = tracing.extract(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00", None)
    with TRACER.start_as_current_span("probe", context=unsampled):
        assert tracing.current_context("ride_x") == (None, None)


def test_a_fresh_process_continues_the_stored_context_of_a_ride(monkeypatch: pytest.MonkeyPatch) -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    with TRACER.start_as_current_span("booking"):
        row = {"rideId": ride_id} | tracing.stored_context(ride_id)
    monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())  # a restart, or another replica
    assert tracing.current_context(ride_id) == (None, None)
    tracing.resume_stored(ride_id, row)
    later = catalog.record(_updated(ride_id), subject=ride_id)  # the watchdog's event: no current span
    assert _ids(later.traceparent)[0] == _ids(row["traceparent"])[0]
    (created,) = [
        s
        for s in trace_export.RECENT.of_trace(_ids(later.traceparent)[0])
        if s["name"] == (f"create {later.type}")
    ]
    assert created["parentSpanId"] == _ids(row["traceparent"])[1]


def test_resuming_keeps_a_span_of_the_same_trace_this_process_saw_and_replaces_another_trace() -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    with TRACER.start_as_current_span("booking"):
        row = tracing.stored_context(ride_id)
        seen = catalog.record(_updated(ride_id), subject=ride_id)  # a later span of the same trace
    tracing.resume_stored(ride_id, row)
    assert tracing.current_context(ride_id) == (seen.traceparent, None)

    other = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    tracing.resume(ride_id, other, None)
    assert tracing.current_context(ride_id) == (other, None)


def test_resuming_nothing_or_an_unsampled_context_changes_nothing() -> None:
    ride_id = f"ride_{secrets.token_hex(4)}"
    tracing.resume(ride_id, None, None)
    tracing.resume(ride_id, "not a traceparent", None)
    tracing.resume(ride_id, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00", None)
    tracing.resume(None, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01", None)
    assert tracing.RIDES.of(ride_id) is None
