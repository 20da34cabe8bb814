"""One trace per ride: a ride booked to PAID, and everything it touched, in the trace its app started.

The app sends a W3C ``traceparent`` on its quote and its booking (as an instrumented app does); the BFF's
``POST /api/v1/rides`` continues it, and from there every hop must: HTTP calls, each event of the ride on
the bus, the queues and the telemetry stream, each consumer, and each websocket push. The spans come from
the services' in-memory rings through the BFF's ``/ops/traces/{traceId}``.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from typing import Any

import pytest
from rider_client import Listener, Ops, Rider, book_ride

from acr.settings import SERVICE_PORTS

pytestmark = pytest.mark.system

SERVICES = set(SERVICE_PORTS)  # all eight
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _ride_frames(listener: Listener, ride_id: str) -> list[dict[str, Any]]:
    return [m for m in list(listener.messages) if m.get("rideId") == ride_id]


def _trace_services(ops: Ops, trace_id: str) -> tuple[set[str], list[dict[str, Any]]]:
    spans = [s for s in ops.get(f"/traces/{trace_id}")["spans"] if s["traceId"] == trace_id]
    return {s["service"] for s in spans}, spans


def test_one_ride_is_one_trace_from_booking_to_the_last_push(bff_url: str, ops: Ops) -> None:
    trace_id = secrets.token_hex(16)
    rider = Rider.sign_up(bff_url, "Tracy Trace")
    listener = Listener(rider)
    ride = book_ride(rider, random.Random(16), traceparent=f"00-{trace_id}-{secrets.token_hex(8)}-01")
    ride_id = ride["rideId"]
    rider.wait_for(
        ride_id, lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None, 240, "PAID with points"
    )
    ops.wait(
        lambda: any(f.get("status") == "PAID" for f in _ride_frames(listener, ride_id)), 90, "PAID pushed"
    )
    ops.wait(lambda: _trace_services(ops, trace_id)[0] >= SERVICES, 90, "spans of every service")
    listener.close()

    frames = _ride_frames(listener, ride_id)
    assert {f["type"] for f in frames} >= {"ride.updated"}, frames
    assert {f.get("traceId") for f in frames} == {trace_id}, [(f["type"], f.get("traceId")) for f in frames]

    services, spans = _trace_services(ops, trace_id)
    assert services >= SERVICES, f"services in the trace: {sorted(services)}"
    booking = [
        s for s in spans if s["service"] == "bff" and s["kind"] == "SERVER" and "/api/v1/rides" in s["name"]
    ]
    assert booking and booking[0]["name"].startswith("POST"), [
        s["name"] for s in spans if s["service"] == "bff"
    ]
    pushes = [s for s in spans if s["service"] == "bff" and s["kind"] == "CONSUMER"]
    assert pushes, "the BFF's push consumer continued the trace"
    assert max(s["endUs"] for s in pushes) >= booking[0]["startUs"]

    timeline = ops.get(f"/rides/{ride_id}/events")
    assert timeline["rideId"] == ride_id and isinstance(timeline["events"], list)
    events = timeline["events"]
    assert len(events) >= 10, [e["type"] for e in events]
    for event in events:
        assert {"type", "source", "id", "time", "traceparent", "tracestate"} <= set(event), event
        found = TRACEPARENT.match(event["traceparent"] or "")
        assert found and found.group(1) == trace_id, (event["type"], event["source"], event["traceparent"])


def test_a_booking_without_trace_context_roots_the_ride_trace_at_the_bff(bff_url: str, ops: Ops) -> None:
    """No traceparent from the app: the BFF's ``POST /api/v1/rides`` span is the root of the ride's
    trace, and every event of the ride still carries that one trace id."""
    rider = Rider.sign_up(bff_url, "Rooted Rita")
    ride = book_ride(rider, random.Random(61))
    ride_id = ride["rideId"]
    rider.wait_status(ride_id, "PAID", timeout_s=240)
    time.sleep(1.0)  # the last events of the ride (points) leave the outboxes
    events = ops.get(f"/rides/{ride_id}/events")["events"]
    trace_ids = {m.group(1) for e in events if (m := TRACEPARENT.match(e["traceparent"] or ""))}
    assert len(trace_ids) == 1 and len(events) >= 10, [(e["type"], e["traceparent"]) for e in events]
    (trace_id,) = trace_ids
    spans = ops.get(f"/traces/{trace_id}")["spans"]
    roots = [s for s in spans if s["traceId"] == trace_id and s["parentSpanId"] is None]
    assert [(r["service"], r["kind"]) for r in roots] == [("bff", "SERVER")], roots
    assert "/api/v1/rides" in roots[0]["name"]
