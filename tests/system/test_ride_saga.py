"""The whole saga and every compensation, through the BFF's public API, its /ops API and the websocket."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from rider_client import LOG_DIR, Listener, Ops, Rider, book_ride

from acr_stack import Stack

pytestmark = pytest.mark.system


class QueueSampler:
    """Samples the depth of every queue of the emulator once a second (the harness's own measurement)."""

    def __init__(self, endpoint: str) -> None:
        self._sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.deepest: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        urls = self._sqs.list_queues()["QueueUrls"]
        while not self._stop.wait(1.0):
            for url in urls:
                depth = int(
                    self._sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]["ApproximateNumberOfMessages"]
                )
                name = url.rsplit("/", 1)[-1]
                self.deepest[name] = max(depth, self.deepest.get(name, 0))

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _published(ops: Ops) -> int:
    return int(ops.get("/stats")["totals"]["published"])


def _dispatch_seconds(ride: dict[str, Any]) -> float:
    """Seconds from REQUESTED to the next status (the car assigned), from the ride's timeline."""
    at = [datetime.fromisoformat(t["at"]) for t in ride["timeline"][:2]]
    return round((at[1] - at[0]).total_seconds(), 2)


def _ride_to_paid(rider: Rider, rng: random.Random) -> tuple[Rider, dict[str, Any], Listener]:
    listener = Listener(rider)
    ride = book_ride(rider, rng)
    done = rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=240,
        what="PAID with points",
    )
    listener.wait_version(ride["rideId"], done["version"])
    return rider, done, listener


def test_twenty_concurrent_rides_all_get_paid_and_pushed_in_order(stack: Stack, bff_url: str) -> None:
    ops = Ops.of(stack)
    riders = [Rider.sign_up(bff_url, f"Rider {n}") for n in range(20)]
    published_before, started = _published(ops), time.monotonic()
    with QueueSampler(stack.config.endpoint) as sampler, ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda r: _ride_to_paid(r[1], random.Random(r[0])), enumerate(riders)))
    elapsed = time.monotonic() - started

    for rider, ride, listener in results:
        listener.close()
        assert listener.versions(ride["rideId"]) == list(range(2, ride["version"] + 1)) or listener.versions(
            ride["rideId"]
        ) == list(range(1, ride["version"] + 1))
        assert [t["status"] for t in ride["timeline"]][-3:] == ["IN_PROGRESS", "COMPLETED", "PAID"]
        assert Decimal(ride["fare"]["amount"]) <= Decimal(ride["quotedFare"]["amount"])
        expected = (1, math.floor(Decimal(ride["fare"]["amount"])))
        me = rider.me_when(lambda m, e=expected: (m["rideCount"], m["points"]) == e, what=f"{expected}")
        assert ride["pointsEarned"] == me["points"]
        assert len(ops.captures(ride["rideId"])) == 1

    simulator = f"{stack.config.url('car-simulator')}/v1/ops/telemetry"
    telemetry = httpx.get(simulator, headers=ops.headers, timeout=10).json()  # /v1/ops/* needs the ops token
    dispatch = sorted(_dispatch_seconds(ride) for _, ride, _ in results)
    metrics = {
        "rides": len(results),
        "seconds": round(elapsed, 1),
        "dispatchSeconds": {"p50": dispatch[len(dispatch) // 2], "max": dispatch[-1]},
        "sagaEventsPerSecond": round((_published(ops) - published_before) / elapsed, 1),
        "telemetry": telemetry,
        "deepestQueue": max(sampler.deepest.items(), key=lambda kv: kv[1]),
        "deepestByQueue": sampler.deepest,
    }
    Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
    (Path(LOG_DIR) / "saga-metrics.json").write_text(json.dumps(metrics, indent=2))
    print("saga metrics:", json.dumps(metrics))  # noqa: T201


def test_rider_cancel_before_the_car_arrives_frees_the_car_and_costs_nothing(bff_url: str, ops: Ops) -> None:
    rider = Rider.sign_up(bff_url, "Early Canceller")
    ride = book_ride(rider, random.Random(101))
    assigned = rider.wait_status(ride["rideId"], "CAR_ASSIGNED")
    cancelled = rider.post(f"/api/v1/rides/{ride['rideId']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["cancellation"]["reason"] == "RIDER_CANCELLED"
    assert cancelled.json()["cancellation"]["fee"] is None
    again = rider.post(f"/api/v1/rides/{ride['rideId']}/cancel")
    assert again.status_code == 202 and again.json()["version"] == cancelled.json()["version"]
    ops.wait(lambda: ops.car(assigned["carId"])["state"] == "AVAILABLE", what="car available again")
    time.sleep(2)
    assert ops.captures(ride["rideId"]) == []


def test_rider_cancel_after_the_car_arrived_costs_a_fee_once_and_earns_nothing(
    bff_url: str, ops: Ops
) -> None:
    rider = Rider.sign_up(bff_url, "Late Canceller")
    ride = book_ride(rider, random.Random(202))
    rider.wait_status(ride["rideId"], "CAR_ARRIVED")
    cancelled = rider.post(f"/api/v1/rides/{ride['rideId']}/cancel").json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancellation"]["fee"] == {
        "amount": "5.00",
        "currency": "EUR",
    }
    paid = rider.wait_for(ride["rideId"], lambda r: r["payment"] is not None, what="fee recorded")
    assert paid["payment"]["status"] == "SUCCEEDED" and paid["status"] == "CANCELLED"
    assert [c["amount"]["amount"] for c in ops.captures(ride["rideId"])] == ["5.00"]
    assert rider.me()["points"] == 0 and paid["pointsEarned"] is None
    late = rider.post(f"/api/v1/rides/{ride['rideId']}/cancel")
    assert late.status_code == 202


def test_a_stalled_car_is_replaced_and_the_ride_still_completes(bff_url: str, ops: Ops) -> None:
    rider = Rider.sign_up(bff_url, "Stalled")
    ride = book_ride(rider, random.Random(303))
    first_car = rider.wait_status(ride["rideId"], "CAR_ASSIGNED")["carId"]
    assert ops.call("POST", f"/cars/{first_car}/stall").status_code == 202
    replaced = rider.wait_for(ride["rideId"], lambda r: r["carId"] not in (None, first_car), what="a new car")
    assert replaced["status"] in ("CAR_ASSIGNED", "CAR_ARRIVED", "IN_PROGRESS", "COMPLETED", "PAID")
    done = rider.wait_status(ride["rideId"], "PAID", timeout_s=240)
    assert done["carId"] != first_car
    assert ops.car(first_car)["state"] == "OUT_OF_SERVICE"
    assert ops.call("POST", f"/cars/{first_car}/return-to-service").status_code == 202
    ops.wait(lambda: ops.car(first_car)["state"] == "AVAILABLE", what="back in service")


def test_a_declined_payment_is_retried_by_the_operator_and_captured_once(bff_url: str, ops: Ops) -> None:
    rider = Rider.sign_up(bff_url, "Declined")
    assert ops.call("PUT", "/gateway", {"mode": "decline"}).status_code == 200
    try:
        ride = book_ride(rider, random.Random(404))
        failed = rider.wait_status(ride["rideId"], "PAYMENT_FAILED", timeout_s=240)
        assert failed["payment"]["status"] == "FAILED" and failed["pointsEarned"] is None
        assert rider.me()["points"] == 0 and ops.captures(ride["rideId"]) == []
    finally:
        assert ops.call("PUT", "/gateway", {"mode": "ok"}).status_code == 200
    assert ops.call("POST", f"/payments/{ride['rideId']}/retry").status_code == 202
    paid = rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        what="PAID after retry",
    )
    assert len(ops.captures(ride["rideId"])) == 1
    assert paid["pointsEarned"] == math.floor(Decimal(paid["fare"]["amount"]))
    rider.me_when(lambda m: m["points"] == paid["pointsEarned"], what=f"{paid['pointsEarned']} points")


def test_route_monitor_killed_mid_trip_does_not_duplicate_the_trip(stack: Stack, bff_url: str) -> None:
    ops, rider = Ops.of(stack), Rider.sign_up(bff_url, "Survivor")
    ride = book_ride(rider, random.Random(505))
    rider.wait_status(ride["rideId"], "IN_PROGRESS", timeout_s=180)
    stack.kill("route-monitor")
    time.sleep(2)
    stack.start_service("route-monitor")
    stack.wait_healthy("route-monitor")
    done = rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=240,
        what="PAID",
    )
    assert [t["status"] for t in done["timeline"]].count("COMPLETED") == 1
    assert len(ops.captures(ride["rideId"])) == 1
    events = ops.get(f"/rides/{ride['rideId']}/events")["events"]
    assert [e["type"] for e in events].count("acme.acr.monitoring.TripCompleted") == 1


def test_a_dropped_websocket_resumed_after_a_version_gets_every_missed_version(
    bff_url: str, ops: Ops
) -> None:
    rider = Rider.sign_up(bff_url, "Reconnecting")
    first = Listener(rider)
    ride = book_ride(rider, random.Random(606))
    first.wait_version(ride["rideId"], 2)
    first.close()
    done = rider.wait_for(
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=240,
        what="PAID",
    )
    second = Listener(rider)
    second.send({"type": "resume", "rideId": ride["rideId"], "afterVersion": 2})
    second.wait_version(ride["rideId"], done["version"])
    assert second.versions(ride["rideId"]) == list(range(3, done["version"] + 1))
    second.send({"type": "resume", "rideId": "ride_of_someone_else", "afterVersion": 0})
    ops.wait(lambda: any(m["type"] == "error" for m in second.messages), what="an error frame")
    assert [m for m in second.messages if m["type"] == "error"][0]["code"] == "ride_not_found"
    second.close()


def test_eta_is_pushed_while_the_car_moves(bff_url: str) -> None:
    rider = Rider.sign_up(bff_url, "Watcher")
    listener = Listener(rider)
    ride = book_ride(rider, random.Random(707))
    rider.wait_status(ride["rideId"], "PAID", timeout_s=240)
    etas = [m for m in listener.messages if m["type"] == "ride.eta" and m["rideId"] == ride["rideId"]]
    listener.close()
    assert etas and {m["phase"] for m in etas} <= {"TO_PICKUP", "TO_DESTINATION"}
    assert all(m["etaSeconds"] >= 0 and isinstance(m["lat"], float) for m in etas)


def test_the_last_car_goes_to_one_rider_and_the_other_hears_no_car(one_car_stack: Stack) -> None:
    base = one_car_stack.config.url("bff")
    ops, ada, bob = Ops.of(one_car_stack), Rider.sign_up(base, "Ada"), Rider.sign_up(base, "Bob")
    rng = random.Random(808)
    quotes = []
    for rider in (ada, bob):
        pickup, dropoff = _near_places(rider, ops, rng)
        quote = rider.quote(pickup, dropoff)
        assert quote.status_code == 201, quote.text
        quotes.append(quote.json()["quoteId"])
    first = ada.book(quotes[0]).json()
    # The car may reach the pickup within a poll: what counts is that Ada's ride holds it now.
    ada.wait_for(first["rideId"], lambda r: r["carId"] is not None, what="a car for Ada")
    second = bob.book(quotes[1]).json()
    lost = bob.wait_status(second["rideId"], "CANCELLED")
    assert lost["cancellation"]["reason"] == "NO_CAR_AVAILABLE"
    ada.post(f"/api/v1/rides/{first['rideId']}/cancel")
    ops.wait(lambda: ops.get("/fleet")["cars"][0]["state"] == "AVAILABLE", what="the car is free")


def test_no_car_within_the_dispatch_timeout_cancels_and_a_late_car_is_released(one_car_stack: Stack) -> None:
    base = one_car_stack.config.url("bff")
    ops, rider = Ops.of(one_car_stack), Rider.sign_up(base, "Patient")
    ops.wait(lambda: ops.get("/fleet")["cars"][0]["state"] == "AVAILABLE", what="the car is free")
    pickup, dropoff = _near_places(rider, ops, random.Random(909))
    quote = rider.quote(pickup, dropoff).json()
    assert ops.call("PUT", "/dispatch", {"paused": True}).status_code == 200
    try:
        ride = rider.book(quote["quoteId"]).json()
        timed_out = rider.wait_status(ride["rideId"], "CANCELLED", timeout_s=60)
        assert timed_out["cancellation"]["reason"] == "DISPATCH_TIMEOUT" and timed_out["carId"] is None
    finally:
        assert ops.call("PUT", "/dispatch", {"paused": False}).status_code == 200
    time.sleep(5)  # the dispatcher now sees the request again: it must not keep a car for a cancelled ride
    assert ops.get("/fleet")["cars"][0]["state"] == "AVAILABLE"
    assert rider.ride(ride["rideId"])["status"] == "CANCELLED"


def _near_places(rider: Rider, ops: Ops, rng: random.Random) -> tuple[dict[str, str], dict[str, str]]:
    """A pickup next to the one car (so it can come within the maximum pickup ETA) and a drop-off."""
    car = ops.get("/fleet")["cars"][0]
    near = rider.get("/api/v1/addresses/reverse", lat=car["lat"], lon=car["lon"]).json()
    lat, lon = car["lat"] + rng.uniform(-0.01, 0.01), car["lon"] + rng.uniform(-0.01, 0.01)
    other = rider.get("/api/v1/addresses/reverse", lat=lat, lon=lon).json()
    return {"addressId": near["addressId"]}, {"addressId": other["addressId"]}
