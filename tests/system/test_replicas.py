"""Every service as several replicas (two of each, three BFFs): 20 rides reach PAID with exactly-once
effects while each rider's websocket sits on another BFF replica than its REST calls, and one replica of
every service is SIGKILLed mid-saga and not restarted. A sampler reads the shard leases all along."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest
from rider_client import Listener, Ops, Rider, book_ride
from stack_fixtures import running_stack

from acr_stack import Stack

pytestmark = pytest.mark.system

RIDES = 20
REPLICAS = "2,bff=3"
LEASE_S = 6.0
SIM_SPEED = 20
HANDOVER_S = 2 * LEASE_S + 4  # an expired lease is taken at the next balancing round, within a lease period
SHARD_PREFIX = "shard#"
MID_SAGA = ("CAR_ASSIGNED", "CAR_ARRIVED", "IN_PROGRESS")


@pytest.fixture(scope="module")
def replicated_stack() -> Iterator[Stack]:
    # A ride takes about a minute (sim speed 20, not the saga stacks' 60): the kills must find rides mid-saga
    # even when a loaded machine spreads the 20 bookings over tens of seconds.
    yield from running_stack(
        "replicas", ACR_REPLICAS=REPLICAS, ACR_LEASE_S=str(LEASE_S), ACR_SIM_SPEED=str(SIM_SPEED)
    )


@dataclass
class ReplicaRider(Rider):
    """A rider whose REST calls go to one BFF replica; once that replica is gone, to the entry point (what
    an app behind a load balancer sees), with the consistency token of its last booking."""

    entry: str = ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self._either(
            lambda base: httpx.get(f"{base}{path}", params=params, headers=self.headers, timeout=10)
        )

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._either(
            lambda base: httpx.post(
                f"{base}{path}", json=body, headers=self.headers | (headers or {}), timeout=10
            )
        )

    def _either(self, call: Any) -> httpx.Response:
        try:
            return call(self.base)  # type: ignore[no-any-return]
        except httpx.TransportError:  # the replica is gone, maybe mid-request (a booking retried is
            self.base = self.entry  # the same booking: same Idempotency-Key)
            return call(self.base)  # type: ignore[no-any-return]


@dataclass
class LeaseSampler:
    """Reads every shard lease in the emulator about once a second: who owns each shard, until when."""

    endpoint: str
    samples: list[tuple[float, dict[str, tuple[str, float]]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tables = [t for t in self._dynamodb.list_tables()["TableNames"] if "checkpoint" in t or "lease" in t]
        while not self._stop.wait(1.0):
            taken_at, owners = time.time(), {}
            for table in tables:
                for item in self._dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]:
                    key = next((v["S"] for v in item.values() if v.get("S", "").startswith(SHARD_PREFIX)), "")
                    if key.startswith(SHARD_PREFIX) and "owner" in item:
                        owners[key] = (item["owner"]["S"], float(item["expiresAt"]["N"]))
            self.samples.append((taken_at, owners))

    def __enter__(self) -> LeaseSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _replicas(ops: Ops) -> dict[str, list[dict[str, Any]]]:
    return ops.get("/replicas")  # type: ignore[no-any-return]


def _ride_to_paid(
    rider: ReplicaRider, listener: Listener, rng: random.Random, booked: dict[str, ReplicaRider]
) -> dict[str, Any]:
    ride = book_ride(rider, rng)
    booked[ride["rideId"]] = rider
    done = rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=300,
        what="PAID with points",
    )
    listener.wait_version(ride["rideId"], done["version"], timeout_s=60)
    return done


def test_twenty_rides_on_two_replicas_of_everything_survive_one_replica_of_each_killed(
    replicated_stack: Stack,
) -> None:
    entry = replicated_stack.config.url("bff")
    ops = Ops.of(replicated_stack)
    replicas = _replicas(ops)
    assert len(replicas["bff"]) == 3 and all(len(replicas[s]) == 2 for s in replicas if s != "bff")
    bffs = [f"http://127.0.0.1:{r['port']}" for r in replicas["bff"]]
    riders, listeners = [], []
    for n in range(RIDES):
        rest, push = bffs[n % 3], bffs[(n + 1) % 2]  # pushes on bff-1/bff-2 only: bff-3 gets killed
        if rest == push:
            rest = bffs[2]
        signed = Rider.sign_up(rest, f"Replica rider {n}")
        riders.append(ReplicaRider(rest, signed.rider_id, signed.token, entry=entry))
        listeners.append(Listener(Rider(push, signed.rider_id, signed.token)))

    killed: dict[str, float] = {}
    booked: dict[str, ReplicaRider] = {}
    with LeaseSampler(replicated_stack.config.endpoint) as sampler, ThreadPoolExecutor(RIDES) as pool:
        futures = [
            pool.submit(_ride_to_paid, rider, listener, random.Random(n), booked)
            for n, (rider, listener) in enumerate(zip(riders, listeners, strict=True))
        ]
        _wait_until_half_under_way(booked, timeout_s=240)
        for members in replicas.values():
            victim = members[-1]["replica"]
            replicated_stack.kill(victim, for_good=True)
            killed[victim] = time.time()
        rides = [future.result() for future in futures]
    for listener in listeners:
        listener.close()

    for rider, listener, ride in zip(riders, listeners, rides, strict=True):
        ride_id = ride["rideId"]
        pushed = listener.versions(ride_id)
        assert pushed == list(range(pushed[0], ride["version"] + 1)) and pushed[0] <= 2, (ride_id, pushed)
        expected = (1, math.floor(Decimal(ride["fare"]["amount"])))
        rider.me_when(lambda m, e=expected: (m["rideCount"], m["points"]) == e, what=f"{expected}")
        assert len(ops.captures(ride_id)) == 1
        events = [e["type"] for e in ops.get(f"/rides/{ride_id}/events")["events"]]
        assert events.count("acme.acr.monitoring.TripCompleted") == 1
    with_eta = [
        ride for listener, ride in zip(listeners, rides, strict=True) if _etas(listener, ride["rideId"])
    ]
    assert len(with_eta) >= RIDES * 3 // 4, f"ETA pushed for {len(with_eta)} of {RIDES} riders"

    _assert_each_shard_had_one_live_owner(sampler.samples, killed)
    after = _replicas(ops)
    for service, members in after.items():
        assert [m["healthy"] for m in members if m["replica"] not in killed] == [True] * (
            len(members) - sum(m["replica"] in killed for m in members)
        ), (service, members)


def _wait_until_half_under_way(booked: dict[str, ReplicaRider], timeout_s: float) -> None:
    """Until half the rides have had a car assigned and most of those are still mid-saga (the kills must
    hit rides under way, not rides done); a timeout names how far each status got, second by second."""
    started, timeline = time.monotonic(), list[str]()
    with ThreadPoolExecutor(RIDES) as pool:  # one sample is one round trip, not twenty in a row
        while time.monotonic() - started < timeout_s:
            rides = list(pool.map(lambda pair: pair[1].ride(pair[0]), list(booked.items())))
            if _under_way(Counter(r["status"] for r in rides), timeline, started):
                return
            time.sleep(1.0)
    shown = timeline if len(timeline) <= 60 else [*timeline[:30], "...", *timeline[-30:]]
    raise AssertionError("never: half the rides under way; statuses:\n" + "\n".join(shown))


def _under_way(statuses: Counter[str], timeline: list[str], started: float) -> bool:
    """Half the rides had a car and a quarter are mid-saga (the sample is added to ``timeline``)."""
    timeline.append(f"{time.monotonic() - started:.0f}s {dict(statuses)}")
    assigned = sum(statuses[s] for s in (*MID_SAGA, "COMPLETED", "PAID"))
    if assigned >= RIDES // 2 and sum(statuses[s] for s in MID_SAGA) >= RIDES // 4:
        print("under way after", timeline[-1])  # noqa: T201
        return True
    return False


def _etas(listener: Listener, ride_id: str) -> list[dict[str, Any]]:
    return [m for m in list(listener.messages) if m["type"] == "ride.eta" and m["rideId"] == ride_id]


def _assert_each_shard_had_one_live_owner(
    samples: list[tuple[float, dict[str, tuple[str, float]]]], killed: dict[str, float]
) -> None:
    """At every sample each shard has one owner; it is a live replica, or the killed one for at most a
    handover (its lease runs out, another takes it and goes on from its checkpoint). A released lease
    (``expiresAt`` 0: its replica gave it up to balance the shares) is free for at most a handover too."""
    assert len(samples) > 10, f"only {len(samples)} lease samples"
    gaps = [later[0] - earlier[0] for earlier, later in zip(samples, samples[1:], strict=False)]
    assert max(gaps) < HANDOVER_S / 2, f"a gap of {max(gaps):.1f} s between lease samples hides a handover"
    shards = set().union(*(owners for _, owners in samples))
    assert shards, "no shard lease was ever seen"
    longest: dict[str, float] = {}
    released_since: dict[str, float] = {}
    for taken_at, owners in samples:
        assert set(owners) == shards or taken_at - samples[0][0] < HANDOVER_S, (taken_at, owners)
        for shard, (owner, expires) in owners.items():
            if expires == 0:
                free_for = taken_at - released_since.setdefault(shard, taken_at)
                assert free_for <= HANDOVER_S, f"{shard}: released by {owner}, free for {free_for:.1f} s"
                continue
            released_since.pop(shard, None)
            if owner in killed and taken_at > killed[owner]:
                longest[shard] = max(longest.get(shard, 0.0), taken_at - killed[owner])
            else:
                assert expires > taken_at, (
                    f"{shard}: the lease of live {owner} ran out ({taken_at - expires:.1f} s)"
                )
    assert all(seconds <= HANDOVER_S for seconds in longest.values()), longest
    print("longest handover per shard (s):", {s: round(v, 1) for s, v in longest.items()})  # noqa: T201
