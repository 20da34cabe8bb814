from __future__ import annotations

import asyncio
import os
from collections import Counter

from bff_fakes import OPS, SETTINGS, FakeDeadLetters, FakeServiceStats, book, error_of
from fastapi.testclient import TestClient

from bff.replicas import replica_table
from bff.state import Dependencies
from bff.stats import totals


def test_ops_needs_the_ops_token(client: TestClient) -> None:
    for path in ("/ops/fleet", "/ops/stats", "/ops/dlq", "/ops/rides?active=true", "/ops/payments"):
        error_of(client.get(path), 401, "unauthorized")
        error_of(client.get(path, headers={"X-Ops-Token": "wrong-token"}), 401, "unauthorized")
    error_of(client.put("/ops/dispatch", json={"paused": True}), 401, "unauthorized")
    assert client.get("/ops/fleet", headers=OPS).json()["cars"][0]["carId"] == "car-00001"


def test_the_dashboard_shows_and_sends_no_default_token(client: TestClient) -> None:
    for path in ("/dashboard", "/static/dashboard/main.js"):
        page = client.get(path)
        assert page.status_code == 200
        assert "dev-ops-token" not in page.text and SETTINGS.ops_token not in page.text
        assert "placeholder" not in page.text


def test_stats_aggregate_with_one_service_down(client: TestClient, deps: Dependencies) -> None:
    services: FakeServiceStats = deps.services  # type: ignore[assignment]
    services.down.add("payment")
    services.counters["ride-manager"] = {
        "published": 5,
        "resent": {"ThrottlingException": 2},
        "duplicatesDiscarded": 1,
        "staleDropped": 0,
        "parked": 1,
        "dlq": {"acr-ride-manager-fleet-dlq": 3},
        "relayLagMs": 40.0,
        "projectionLagMs": 120.0,
    }
    services.counters["reward"] = {
        "published": 2,
        "resent": {"ThrottlingException": 1, "InternalFailure": 1},
        "duplicatesDiscarded": 0,
        "staleDropped": 4,
        "parked": 0,
        "dlq": {"acr-reward-payments-dlq": 1},
        "relayLagMs": 90.0,
        "projectionLagMs": 10.0,
    }
    response = client.get("/ops/stats", headers=OPS)
    assert response.status_code == 200
    body = response.json()
    assert set(body["services"]) == {
        "bff",
        "ride-manager",
        "address-finder",
        "car-dispatcher",
        "car-simulator",
        "route-monitor",
        "payment",
        "reward",
    }
    assert body["services"]["payment"] == {"error": "unavailable"}
    totals_ = body["totals"]
    own = body["services"]["bff"]  # this process's counters, which earlier tests in the process also moved
    others = 4  # address-finder, car-dispatcher, car-simulator, route-monitor publish 1 each in the fake
    assert totals_["published"] == 5 + 2 + others + own["published"]
    resent = Counter({"ThrottlingException": 3, "InternalFailure": 1}) + Counter(own["resent"])
    assert totals_["resent"] == dict(resent)
    assert totals_["dlq"] == {"acr-ride-manager-fleet-dlq": 3, "acr-reward-payments-dlq": 1} | own.get(
        "dlq", {}
    )
    assert totals_["relayLagMs"] == max(90.0, own["relayLagMs"])
    assert totals_["projectionLagMs"] == max(120.0, own["projectionLagMs"])
    assert (totals_["staleDropped"], totals_["parked"], totals_["duplicatesDiscarded"]) == (
        4 + own["staleDropped"],
        1 + own["parked"],
        1 + own["duplicatesDiscarded"],
    )


def test_totals_default_every_counter() -> None:
    assert totals({"x": {"error": "unavailable"}}) == {
        "published": 0,
        "resent": {},
        "duplicatesDiscarded": 0,
        "staleDropped": 0,
        "parked": 0,
        "dlq": {},
        "relayLagMs": 0.0,
        "projectionLagMs": 0.0,
        "projectionP50LagMs": 0.0,
        "projectionP99LagMs": 0.0,
    }


def test_healthz_lists_dependencies(client: TestClient, deps: Dependencies) -> None:
    healthy = client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json()["status"] == "ok" and set(healthy.json()["dependencies"].values()) == {"ok"}
    deps.services.down.add("reward")  # type: ignore[attr-defined]
    degraded = client.get("/healthz")
    assert degraded.status_code == 503
    assert degraded.json()["dependencies"]["reward"] == "down"


def test_controls(client: TestClient, deps: Dependencies) -> None:
    assert client.put("/ops/dispatch", json={"paused": True}, headers=OPS).json() == {"paused": True}
    assert deps.fleet.paused is True  # type: ignore[attr-defined]
    error_of(client.put("/ops/dispatch", json={"paused": "yes"}, headers=OPS), 422, "validation_error")
    assert client.put("/ops/gateway", json={"mode": "decline"}, headers=OPS).status_code == 200
    error_of(client.put("/ops/gateway", json={"mode": "explode"}, headers=OPS), 422, "validation_error")
    assert client.post("/ops/cars/car-00007/stall", headers=OPS).status_code == 202
    assert client.post("/ops/cars/car-00007/return-to-service", headers=OPS).status_code == 202
    assert (deps.fleet.stalled, deps.fleet.returned) == (["car-00007"], ["car-00007"])  # type: ignore[attr-defined]
    assert client.post("/ops/payments/ride_1/retry", headers=OPS).status_code == 202
    assert client.get("/ops/payments?rideId=ride_1", headers=OPS).json()["charges"][0]["rideId"] == "ride_1"


def test_dlq_and_redrive(client: TestClient, deps: Dependencies) -> None:
    listed = client.get("/ops/dlq", headers=OPS).json()
    assert listed == {
        "queues": [{"queue": "acr-reward-events-dlq", "depth": 2, "reasons": {"unknown_type": 2}}],
        "unavailable": [],
    }
    moved = client.post("/ops/dlq/acr-reward-events-dlq/redrive", headers=OPS).json()
    assert moved == {"queue": "acr-reward-events-dlq", "redriven": 2}
    assert deps.dead_letters.redriven == [("reward", "acr-reward-events-dlq")]  # type: ignore[attr-defined]


def test_the_dlqs_of_every_service_are_gathered_and_a_silent_one_is_named(
    client: TestClient, deps: Dependencies
) -> None:
    dead: FakeDeadLetters = deps.dead_letters  # type: ignore[assignment]
    dead.depths = {
        "bff": {"acr-bff-ride-eta-dlq-bff-1": {"unparseable": 1}},
        "ride-manager": {
            "acr-ride-manager-events-dlq": {"untrusted_source": 2},
            "acr-ride-manager-producer-dlq": {},
        },
        "payment": {"acr-payment-events-dlq": {"unknown_type": 1}},
    }
    dead.down.add("payment")
    listed = client.get("/ops/dlq", headers=OPS).json()
    assert [q["queue"] for q in listed["queues"]] == [
        "acr-bff-ride-eta-dlq-bff-1",
        "acr-ride-manager-events-dlq",
        "acr-ride-manager-producer-dlq",
    ]
    assert listed["unavailable"] == ["payment"]
    error_of(
        client.post("/ops/dlq/acr-payment-events-dlq/redrive", headers=OPS), 503, "dependency_unavailable"
    )


def test_a_redrive_goes_to_the_service_the_queue_name_names(client: TestClient, deps: Dependencies) -> None:
    dead: FakeDeadLetters = deps.dead_letters  # type: ignore[assignment]
    dead.depths = {
        "bff": {"acr-bff-ride-updates-dlq-bff-2.fifo": {"unparseable": 1}},
        "car-dispatcher": {"acr-car-dispatcher-producer-dlq": {"ValidationException": 3}},
    }
    for queue in ("acr-car-dispatcher-producer-dlq", "acr-bff-ride-updates-dlq-bff-2.fifo"):
        assert client.post(f"/ops/dlq/{queue}/redrive", headers=OPS).status_code == 200
    assert dead.redriven == [
        ("car-dispatcher", "acr-car-dispatcher-producer-dlq"),
        ("bff", "acr-bff-ride-updates-dlq-bff-2.fifo"),
    ]
    error_of(client.post("/ops/dlq/acr-nobody-events-dlq/redrive", headers=OPS), 404, "not_found")
    error_of(client.post("/ops/dlq/acr-car-dispatcher-other-dlq/redrive", headers=OPS), 404, "not_found")
    assert len(dead.redriven) == 2


def test_ops_rides_and_events(
    client: TestClient, deps: Dependencies, rider: tuple[str, dict[str, str]]
) -> None:
    ride = book(client, rider[1])
    assert client.get("/ops/rides?active=true", headers=OPS).json()["rides"][0]["rideId"] == ride["rideId"]
    published = deps.services.published  # type: ignore[attr-defined]
    published["car-dispatcher"] = [
        {"type": "acme.acr.fleet.CarAssigned", "subject": ride["rideId"], "time": "t2"}
    ]
    published["ride-manager"] = [
        {"type": "acme.acr.ride.RideRequested", "subject": ride["rideId"], "time": "t1"}
    ]
    events = client.get(f"/ops/rides/{ride['rideId']}/events", headers=OPS).json()["events"]
    assert [e["type"].rsplit(".", 1)[1] for e in events] == ["RideRequested", "CarAssigned"]
    error_of(client.get("/ops/rides/unknown/events", headers=OPS), 404, "ride_not_found")
    deps.ride_manager.down = True  # type: ignore[attr-defined]
    error_of(client.get("/ops/rides?active=true", headers=OPS), 503, "dependency_unavailable")


def test_the_oldest_pending_outbox_age_totals_to_the_worst_service() -> None:
    total = totals(
        {
            "ride-manager": {"published": 1, "oldestPendingMs": 1500.0},
            "payment": {"published": 2, "oldestPendingMs": 90_000.0},
            "reward": {"published": 3, "oldestPendingMs": None},  # nothing pending
        }
    )
    assert total["oldestPendingMs"] == 90_000.0 and total["published"] == 6
    assert "oldestPendingMs" not in totals({"reward": {"oldestPendingMs": None}})


def test_an_operator_cancels_a_ride_and_sees_refusals_passed_through(
    client: TestClient, rider: tuple[str, dict[str, str]]
) -> None:
    _, headers = rider
    places = {"pickup": {"addressId": "a"}, "dropoff": {"addressId": "b"}}
    quote = client.post("/api/v1/quotes", json=places, headers=headers).json()
    booking = headers | {"Idempotency-Key": "op1"}
    ride = client.post("/api/v1/rides", json={"quoteId": quote["quoteId"]}, headers=booking).json()
    cancelled = client.post(f"/ops/rides/{ride['rideId']}/cancel", headers=OPS)
    assert cancelled.status_code == 202
    assert cancelled.json()["cancellation"]["reason"] == "OPERATOR_CANCELLED"
    again = client.post(f"/ops/rides/{ride['rideId']}/cancel", headers=OPS)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_cancellable")
    unknown = client.post("/ops/rides/ride_nobody/cancel", headers=OPS)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "ride_not_found")
    assert client.post(f"/ops/rides/{ride['rideId']}/cancel").status_code == 401


def test_replicas_need_the_ops_token_and_list_what_one_process_per_service_can_know(
    client: TestClient, deps: Dependencies
) -> None:
    """Without the stack's list (one container per service): this BFF, and who answers each service's URL."""
    error_of(client.get("/ops/replicas"), 401, "unauthorized")
    services: FakeServiceStats = deps.services  # type: ignore[assignment]
    services.processes[SETTINGS.service_url("payment")] = {
        "service": "payment",
        "replica": "pay-7f",
        "pid": 41,
    }
    body = client.get("/ops/replicas", headers=OPS).json()
    assert set(body) == {"bff", *services.services}
    assert body["bff"] == [{"replica": SETTINGS.replica, "port": 8000, "pid": os.getpid(), "healthy": True}]
    assert body["payment"] == [{"replica": "pay-7f", "port": 8005, "pid": 41, "healthy": True}]
    assert body["reward"] == [{"replica": "reward", "port": 8006, "pid": None, "healthy": False}]


def test_replicas_listed_by_the_stack_keep_their_names_and_a_dead_one_is_unhealthy() -> None:
    listed = {
        "bff": {"bff-1": "http://127.0.0.1:20001", "bff-2": "http://127.0.0.1:20002"},
        "reward": {"reward": "http://127.0.0.1:20003"},
    }
    settings = SETTINGS.model_copy(update={"replica_urls": listed})
    services = FakeServiceStats(("reward",))
    services.processes["http://127.0.0.1:20001"] = {"service": "bff", "replica": "bff-1", "pid": 11}
    services.processes["http://127.0.0.1:20003"] = {"service": "reward", "replica": "reward", "pid": 13}
    assert asyncio.run(replica_table(settings, services)) == {
        "bff": [
            {"replica": "bff-1", "port": 20001, "pid": 11, "healthy": True},
            {"replica": "bff-2", "port": 20002, "pid": None, "healthy": False},
        ],
        "reward": [{"replica": "reward", "port": 20003, "pid": 13, "healthy": True}],
    }


def test_projections_of_every_service_are_listed_and_rebuilt_by_their_owner(
    client: TestClient, deps: Dependencies
) -> None:
    error_of(client.get("/ops/projections"), 401, "unauthorized")
    listed = client.get("/ops/projections", headers=OPS).json()
    assert listed == {
        "projections": [
            {
                "service": "ride-manager",
                "name": "ride-history",
                "state": "LIVE",
                "lagMs": {"p50": 12.0, "p99": 40.0},
                "lastRebuild": None,
            },
            {"service": "reward", "name": "rider-stats", "state": "LIVE", "lagMs": {}, "lastRebuild": None},
        ],
        "unavailable": [],
    }
    started = client.post("/ops/projections/rider-stats/rebuild", headers=OPS)
    assert started.status_code == 202 and started.json() == {
        "service": "reward",
        "name": "rider-stats",
        "state": "REBUILDING",
    }
    states = {
        p["name"]: p["state"] for p in client.get("/ops/projections", headers=OPS).json()["projections"]
    }
    assert states == {"ride-history": "LIVE", "rider-stats": "REBUILDING"}
    error_of(client.post("/ops/projections/rider-stats/rebuild", headers=OPS), 409, "rebuild_in_progress")
    error_of(client.post("/ops/projections/no-such-model/rebuild", headers=OPS), 404, "projection_not_found")
    deps.services.down.add("ride-manager")  # type: ignore[attr-defined]
    partial = client.get("/ops/projections", headers=OPS).json()
    assert [p["name"] for p in partial["projections"]] == ["rider-stats"]
    assert partial["unavailable"] == ["ride-manager"]
    # the read model may belong to the service that does not answer: not a 404
    error_of(client.post("/ops/projections/ride-history/rebuild", headers=OPS), 503, "dependency_unavailable")


def test_projection_lag_percentiles_total_to_the_worst_service() -> None:
    total = totals(
        {
            "ride-manager": {"projectionP50LagMs": 30.0, "projectionP99LagMs": 900.0},
            "reward": {"projectionP50LagMs": 50.0, "projectionP99LagMs": 80.0},
        }
    )
    assert total["projectionP50LagMs"] == 50.0 and total["projectionP99LagMs"] == 900.0
