"""reward's rider stats rebuilt from the acr-reward archive while riders read them: riders' rides reach PAID,
an operator rebuilds the rider-stats read model (a fresh copy filled by a replay of the bus's archive, reads
switched to it once it caught up), and every ``/riders/me`` read through the BFF succeeds all along and
answers the same standing. Its own stack, since a rebuild changes state."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from rider_client import Ops, Reads, Rider, book_ride
from stack_fixtures import copies_of, replay_state, running_stack

from acr_stack import Stack

pytestmark = pytest.mark.system

STATS = "rider-stats"
RIDES = (2, 1)  # rides of each rider, booked at once
REBUILD_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def riderstats_stack() -> Iterator[Stack]:
    yield from running_stack("riderstats")


def standing_reads(riders: list[Rider], expected: dict[str, dict[str, Any]]) -> Reads:
    """Every rider's ``/riders/me`` read through the BFF, over and over: a failure is any answer but 200
    with the standing the rider had before the rebuild (nothing changes it meanwhile)."""

    def read() -> str | None:
        for rider in riders:
            response = rider.get("/api/v1/riders/me")
            if response.status_code != 200:
                return f"{response.status_code} {response.text[:200]}"
            if response.json() != expected[rider.rider_id]:
                return f"{rider.rider_id} answered {response.json()}"
        return None

    return Reads(read, pause_s=0.05)


def test_the_rider_stats_are_rebuilt_from_the_archive_while_riders_read_them(riderstats_stack: Stack) -> None:
    base, ops = riderstats_stack.config.url("bff"), Ops.of(riderstats_stack)
    riders = [Rider.sign_up(base, f"stats {i}") for i in range(len(RIDES))]
    with ThreadPoolExecutor(sum(RIDES)) as pool:
        jobs = [(rider, random.Random(f"{i}-{n}")) for i, rider in enumerate(riders) for n in range(RIDES[i])]
        paid = list(pool.map(lambda job: ride_to_paid(*job), jobs))
    before = {}
    for rider in riders:
        fares = [r["fare"]["amount"] for r in paid if r["riderId"] == rider.rider_id]
        expected = (len(fares), sum(math.floor(Decimal(f)) for f in fares))
        before[rider.rider_id] = rider.me_when(
            lambda m, e=expected: (m["rideCount"], m["points"]) == e, what=f"{expected}"
        )
    listed = ops.projection(STATS)
    assert listed["state"] == "LIVE" and listed["lastRebuild"] is None and listed["lagMs"]["p50"] is not None

    reader = standing_reads(riders, before)
    try:
        started = ops.call("POST", f"/projections/{STATS}/rebuild")
        assert started.status_code == 202, started.text
        assert started.json()["service"] == "reward"
        again = ops.call("POST", f"/projections/{STATS}/rebuild")
        assert again.status_code == 409 and again.json()["error"]["code"] == "rebuild_in_progress"
        state = ops.rebuilt(STATS, REBUILD_TIMEOUT_S)
        time.sleep(3)  # reads go on after the switch and the old copy's drop
    finally:
        reader.stop()

    assert state["lastRebuild"]["status"] == "COMPLETED" and state["lastRebuild"]["generation"] == 1, state
    assert reader.failures == [] and reader.reads > 10, (reader.reads, reader.failures[:5])
    assert copies_of(riderstats_stack, "acr-reward-rider-stats") == [
        "acr-reward-rider-stats-g1"
    ]  # the fresh copy is read, the old dropped
    assert replay_state(riderstats_stack, state["lastRebuild"]["replay"]) == "COMPLETED"
    # only the replay of the archive can have filled the fresh copy: no standing changed during the rebuild
    assert {rider.rider_id: rider.me() for rider in riders} == before


def ride_to_paid(rider: Rider, rng: random.Random) -> dict[str, Any]:
    ride = book_ride(rider, rng)
    return rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=120,
        what="PAID with points",
    )
