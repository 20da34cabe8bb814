"""The live fleet view rebuilt from the acr-fleet archive while it is read: a ride's car is reserved, stalls
(out of service) and its replacement is released when the rider cancels; an operator rebuilds the ``fleet``
read model through the BFF, the stalled car goes back to service meanwhile, and every ``/ops/fleet`` read
lists the whole fleet all along. After the switch the view is what it was, plus the change made during the
rebuild. Its own stack, since a rebuild changes state."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from rider_client import Ops, Reads, Rider, book_ride
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


def fleet_reads(ops: Ops) -> Reads:
    """``/ops/fleet`` read over and over: a failure is any answer but 200 with the whole fleet."""

    def read() -> str | None:
        response = ops.call("GET", "/fleet")
        if response.status_code != 200:
            return f"{response.status_code} {response.text[:200]}"
        listed = len(response.json()["cars"])
        return None if listed == FLEET_SIZE else f"{listed} cars listed"

    return Reads(read)


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

    reader = fleet_reads(ops)
    try:
        started = ops.call("POST", f"/projections/{FLEET}/rebuild")
        assert started.status_code == 202, started.text
        assert ops.call("POST", f"/cars/{stalled}/return-to-service").status_code == 202
        state = ops.rebuilt(FLEET, REBUILD_TIMEOUT_S)
        time.sleep(3)  # reads go on after the switch and the old copy's drop
    finally:
        reader.stop()

    assert state["lastRebuild"]["status"] == "COMPLETED" and state["lastRebuild"]["generation"] == 1, state
    assert reader.failures == [] and reader.reads > 10, (reader.reads, reader.failures[:5])
    ops.wait(lambda: ops.car(stalled)["state"] == "AVAILABLE", what=f"{stalled} back in the rebuilt view")
    assert states(ops) == before | {stalled: ("AVAILABLE", None)}
