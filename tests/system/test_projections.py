"""The ride history rebuilt from the acr-ride archive while riders book and read: riders book rides, an
operator rebuilds the ride-history read model (a fresh copy filled by a replay of the bus's archive, reads
switched to it once it caught up), more rides are booked meanwhile, and every history read through the
BFF succeeds all along. After the switch the history equals what it was before plus what happened since:
the same rides, each at the version of the write model. Its own stack, since a rebuild changes state."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rider_client import Ops, Reads, Rider, book_ride
from stack_fixtures import copies_of, replay_state, running_stack

from acr_stack import Stack

pytestmark = pytest.mark.system

RIDERS = 4
RIDES_BEFORE = 2  # per rider, before the rebuild
HISTORY = "ride-history"
REBUILD_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def projections_stack() -> Iterator[Stack]:
    yield from running_stack("projections")


def history_of(rider: Rider) -> list[dict[str, Any]]:
    response = rider.get("/api/v1/rides", limit=100)
    assert response.status_code == 200, response.text
    return list(response.json()["rides"])


def versions(rides: list[dict[str, Any]]) -> dict[str, int]:
    return {r["rideId"]: int(r["version"]) for r in rides}


def history_reads(riders: list[Rider]) -> Reads:
    """Every rider's history read through the BFF, over and over: any answer but 200 is a failure."""

    def read() -> str | None:
        answers = [rider.get("/api/v1/rides", limit=100) for rider in riders]
        failed = [f"{a.status_code} {a.text[:200]}" for a in answers if a.status_code != 200]
        return "; ".join(failed) or None

    return Reads(read)


def wait_listed(rider: Rider, ride_ids: set[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not ride_ids <= set(versions(history_of(rider))):
        assert time.monotonic() < deadline, f"{rider.rider_id}'s history never listed {ride_ids}"
        time.sleep(0.5)


def wait_until_listed_as(rider: Rider, ride_id: str, status: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(r["rideId"] == ride_id and r["status"] == status for r in history_of(rider)):
        assert time.monotonic() < deadline, f"{ride_id} never listed as {status}"
        time.sleep(0.5)


def settled_equal(rider: Rider, timeout_s: float = 120) -> dict[str, int]:
    """The rider's history once it equals the write model (each ride read alone) at one moment: the same
    rides, each at its latest version (rides move on while the saga runs, so compare until both agree)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = versions(history_of(rider))
        truth = {ride_id: int(rider.ride(ride_id)["version"]) for ride_id in listed}
        if listed == truth:
            return listed
        assert time.monotonic() < deadline, f"history {listed} never matched the rides {truth}"
        time.sleep(1.0)


def test_the_ride_history_is_rebuilt_from_the_archive_while_rides_are_booked_and_read(
    projections_stack: Stack,
) -> None:
    base, ops, rng = projections_stack.config.url("bff"), Ops.of(projections_stack), random.Random(16)
    riders = [Rider.sign_up(base, f"history {i}") for i in range(RIDERS)]
    booked, cancelled = book_and_cancel_one_each(riders, rng)
    before = {r.rider_id: versions(history_of(r)) for r in riders}
    history = ops.projection(HISTORY)
    assert history["state"] == "LIVE"
    assert history["lastRebuild"] is None and history["lagMs"]["p50"] is not None

    reader = history_reads(riders)
    latecomers = [Rider.sign_up(base, f"latecomer {i}") for i in range(2)]
    booked |= {r.rider_id: set() for r in latecomers}

    def book_during_rebuild() -> None:
        for rider in latecomers + riders[:2]:
            booked[rider.rider_id].add(book_ride(rider, rng)["rideId"])
            time.sleep(0.5)

    booking = threading.Thread(target=book_during_rebuild, daemon=True)
    try:
        started = ops.call("POST", f"/projections/{HISTORY}/rebuild")
        assert started.status_code == 202, started.text
        booking.start()
        again = ops.call("POST", f"/projections/{HISTORY}/rebuild")
        assert again.status_code == 409 and again.json()["error"]["code"] == "rebuild_in_progress"
        state = ops.rebuilt(HISTORY, REBUILD_TIMEOUT_S)
        booking.join(timeout=60)
        time.sleep(3)  # reads go on after the switch and the old copy's drop
    finally:
        reader.stop()

    assert state["lastRebuild"]["status"] == "COMPLETED" and state["lastRebuild"]["generation"] == 1, state
    assert reader.failures == [] and reader.reads > 5, (reader.reads, reader.failures[:5])  # all riders each
    copies = copies_of(projections_stack, "acr-ride-manager-ride-history")
    assert copies == ["acr-ride-manager-ride-history-g1"]  # the fresh copy is read, the old one dropped
    assert replay_state(projections_stack, state["lastRebuild"]["replay"]) == "COMPLETED"

    everyone = riders + latecomers
    for rider in everyone:
        wait_listed(rider, booked[rider.rider_id])
        rebuilt = settled_equal(rider)
        assert set(rebuilt) == booked[rider.rider_id]  # no ride lost, none invented
        for ride_id, version in before.get(rider.rider_id, {}).items():
            assert rebuilt[ride_id] >= version
    for rider in riders:  # no live event touched these during the rebuild: they came from the archive
        ride_id = cancelled[rider.rider_id]
        (ride,) = [r for r in history_of(rider) if r["rideId"] == ride_id]
        assert ride["status"] == "CANCELLED" and int(ride["version"]) == before[rider.rider_id][ride_id]


def book_and_cancel_one_each(
    riders: list[Rider], rng: random.Random
) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Each rider books ``RIDES_BEFORE`` rides and cancels one at once: that one ends before the rebuild,
    so no live event touches it during the rebuild and only the archive's replay can bring it back."""
    booked: dict[str, set[str]] = {r.rider_id: set() for r in riders}
    cancelled: dict[str, str] = {}
    for rider in riders:
        for _ in range(RIDES_BEFORE):
            booked[rider.rider_id].add(book_ride(rider, rng)["rideId"])
        ride_id = sorted(booked[rider.rider_id])[0]
        assert rider.post(f"/api/v1/rides/{ride_id}/cancel").status_code == 202
        cancelled[rider.rider_id] = ride_id
        wait_listed(rider, booked[rider.rider_id])
    for rider in riders:
        rider.wait_status(cancelled[rider.rider_id], "CANCELLED")
        wait_until_listed_as(rider, cancelled[rider.rider_id], "CANCELLED")
    return booked, cancelled
