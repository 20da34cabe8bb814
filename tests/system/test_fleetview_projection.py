"""The live fleet view rebuilt from the acr-fleet archive while it is read: a ride's car is reserved, stalls
(out of service) and its replacement is released when the rider cancels; an operator rebuilds the ``fleet``
read model through the BFF, the stalled car goes back to service meanwhile, and every ``/ops/fleet`` read
lists the whole fleet all along. After the switch the view is what it was, plus the change made during the
rebuild. Its own stack, since a rebuild changes state."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from rider_client import Ops, Rider, book_ride
from stack_fixtures import SAGA_SETTINGS, running_stack

from acr_stack import Stack

pytestmark = pytest.mark.system

FLEET = "fleet"
FLEET_SIZE = int(SAGA_SETTINGS["ACR_FLEET_SIZE"])
REBUILD_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def fleetview_stack() -> Iterator[Stack]:
    yield from running_stack("fleetview")


def states(ops: Ops) -> dict[str, tuple[str, str | None]]:
    return {c["carId"]: (c["state"], c["rideId"]) for c in ops.get("/fleet")["cars"]}


@dataclass
class FleetReader:
    """Reads ``/ops/fleet`` over and over; keeps every failure and every answer short of the fleet."""

    ops: Ops
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = self.ops.call("GET", "/fleet")
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                elif len(response.json()["cars"]) != FLEET_SIZE:
                    self.failures.append(f"{len(response.json()['cars'])} cars listed")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            self.reads += 1
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_the_fleet_view_is_rebuilt_from_the_archive_while_it_is_read(fleetview_stack: Stack) -> None:
    base, ops, rng = fleetview_stack.config.url("bff"), Ops.of(fleetview_stack), random.Random(16)
    rider = Rider.sign_up(base, "fleet view")
    ride = book_ride(rider, rng)  # a car is reserved, stalls (out of service), the rider cancels
    stalled = rider.wait_for(ride["rideId"], lambda r: r["carId"] is not None, what="a car")["carId"]
    ops.wait(lambda: ops.car(stalled)["rideId"] == ride["rideId"], what=f"{stalled} reserved in the view")
    assert ops.call("POST", f"/cars/{stalled}/stall").status_code == 202
    ops.wait(lambda: ops.car(stalled)["state"] == "OUT_OF_SERVICE", what=f"{stalled} out of service")
    assert rider.post(f"/api/v1/rides/{ride['rideId']}/cancel").status_code == 202
    rider.wait_status(ride["rideId"], "CANCELLED")
    ops.wait(
        lambda: all(state in ("AVAILABLE", "OUT_OF_SERVICE") for state, _ in states(ops).values()),
        what="no car held for the cancelled ride",
    )
    before = states(ops)
    assert len(before) == FLEET_SIZE

    reader = FleetReader(ops)
    try:
        started = ops.call("POST", f"/projections/{FLEET}/rebuild")
        assert started.status_code == 202, started.text
        assert ops.call("POST", f"/cars/{stalled}/return-to-service").status_code == 202
        state = live_again(ops)
        time.sleep(3)  # reads go on after the switch and the old copy's drop
    finally:
        reader.stop()

    assert state["lastRebuild"]["status"] == "COMPLETED" and state["lastRebuild"]["generation"] == 1, state
    assert reader.failures == [] and reader.reads > 10, (reader.reads, reader.failures[:5])
    ops.wait(lambda: ops.car(stalled)["state"] == "AVAILABLE", what=f"{stalled} back in the rebuilt view")
    assert states(ops) == before | {stalled: ("AVAILABLE", None)}


def live_again(ops: Ops) -> dict[str, Any]:
    """Poll ``/ops/projections`` until the fleet view is LIVE with a last rebuild; REBUILDING until then."""
    deadline = time.monotonic() + REBUILD_TIMEOUT_S
    while True:
        (state,) = [p for p in ops.get("/projections")["projections"] if p["name"] == FLEET]
        if state["state"] == "LIVE" and state["lastRebuild"]:
            return dict(state)
        assert state["state"] == "REBUILDING", state
        assert time.monotonic() < deadline, f"still rebuilding: {state}"
        time.sleep(0.5)
