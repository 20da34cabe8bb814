"""reward's rider stats rebuilt from the acr-reward archive while riders read them: riders' rides reach PAID,
an operator rebuilds the rider-stats read model (a fresh copy filled by a replay of the bus's archive, reads
switched to it once it caught up), and every ``/riders/me`` read through the BFF succeeds all along and
answers the same standing. Its own stack, since a rebuild changes state."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest
from rider_client import Ops, Rider, book_ride
from stack_fixtures import running_stack

from acr_stack import Stack

pytestmark = pytest.mark.system

STATS = "rider-stats"
RIDES = (2, 1)  # rides of each rider, booked at once
REBUILD_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def riderstats_stack() -> Iterator[Stack]:
    yield from running_stack("riderstats")


@dataclass
class StandingReader:
    """Reads every rider's ``/riders/me`` through the BFF, over and over, and keeps every failure and every
    answer that is not the standing the rider had before the rebuild (nothing changes it meanwhile)."""

    riders: list[Rider]
    expected: dict[str, dict[str, Any]]
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for rider in self.riders:
                try:
                    response = rider.get("/api/v1/riders/me")
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                    elif response.json() != self.expected[rider.rider_id]:
                        self.failures.append(f"{rider.rider_id} answered {response.json()}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.reads += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


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
    listed = listed_as(ops, STATS)
    assert listed["state"] == "LIVE" and listed["lastRebuild"] is None and listed["lagMs"]["p50"] is not None

    reader = StandingReader(riders, before)
    try:
        started = ops.call("POST", f"/projections/{STATS}/rebuild")
        assert started.status_code == 202, started.text
        assert started.json()["service"] == "reward"
        again = ops.call("POST", f"/projections/{STATS}/rebuild")
        assert again.status_code == 409 and again.json()["error"]["code"] == "rebuild_in_progress"
        state = live_again(ops, STATS)
        time.sleep(3)  # reads go on after the switch and the old copy's drop
    finally:
        reader.stop()

    assert state["lastRebuild"]["status"] == "COMPLETED" and state["lastRebuild"]["generation"] == 1, state
    assert reader.failures == [] and reader.reads > 20, (reader.reads, reader.failures[:5])
    assert copies_of(riderstats_stack) == [
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


def listed_as(ops: Ops, name: str) -> dict[str, Any]:
    """The read model ``name`` as ``/ops/projections`` lists it (every service's are listed, by name)."""
    answer = ops.get("/projections")
    assert answer["unavailable"] == [], answer
    (state,) = [p for p in answer["projections"] if p["name"] == name]
    return dict(state)


def live_again(ops: Ops, name: str) -> dict[str, Any]:
    """Poll ``/ops/projections`` until ``name`` is LIVE with a last rebuild; REBUILDING until then."""
    deadline = time.monotonic() + REBUILD_TIMEOUT_S
    while True:
        state = listed_as(ops, name)
        if state["state"] == "LIVE" and state["lastRebuild"]:
            return state
        assert state["state"] == "REBUILDING", state
        assert time.monotonic() < deadline, f"still rebuilding: {state}"
        time.sleep(0.5)


def copies_of(stack: Stack) -> list[str]:
    tables = aws(stack, "dynamodb").list_tables()["TableNames"]
    return sorted(t for t in tables if t.startswith("acr-reward-rider-stats"))


def replay_state(stack: Stack, replay: str) -> str:
    return str(aws(stack, "events").describe_replay(ReplayName=replay)["State"])


def aws(stack: Stack, service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=stack.config.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
