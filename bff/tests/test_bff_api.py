from __future__ import annotations

import time

import pytest
from bff_fakes import FakeRideManager, Headers, auth, book, error_of, ride_json, token_for
from fastapi.testclient import TestClient

from bff.auth import new_rider_id
from bff.errors import UpstreamError
from bff.state import Dependencies


# --- error shape -----------------------------------------------------------------------------------
def test_unknown_route_is_404_not_found(client: TestClient) -> None:
    error_of(client.get("/api/v1/nope"), 404, "not_found")
    error_of(client.get("/nope"), 404, "not_found")


def test_wrong_method_is_405(client: TestClient, rider: tuple[str, Headers]) -> None:
    error_of(client.delete("/api/v1/riders", headers=rider[1]), 405, "method_not_allowed")
    error_of(client.put("/ops/fleet"), 405, "method_not_allowed")


def test_validation_errors_are_422(client: TestClient, rider: tuple[str, Headers]) -> None:
    for name in ("", "   ", "x" * 81, "bad\x07name", 42):
        error_of(client.post("/api/v1/riders", json={"name": name}), 422, "validation_error")
    error_of(client.post("/api/v1/riders", json={}), 422, "validation_error")
    headers = rider[1]
    error_of(
        client.get("/api/v1/addresses/autocomplete?q=ru&limit=21", headers=headers), 422, "validation_error"
    )
    error_of(
        client.get("/api/v1/addresses/autocomplete?q=ru&limit=0", headers=headers), 422, "validation_error"
    )
    for lat in ("nan", "inf", "-Infinity", "abc"):
        error_of(
            client.get(f"/api/v1/addresses/reverse?lat={lat}&lon=2.3", headers=headers),
            422,
            "validation_error",
        )
    for bbox in ("1,2,3", "1,2,3,x", "1,2,3,nan", "1,2,3,1e3", "1,2,3,4,5"):
        error_of(client.get(f"/api/v1/map?bbox={bbox}&zoom=12", headers=headers), 422, "validation_error")
    error_of(
        client.post(
            "/api/v1/quotes", headers=headers, json={"pickup": {"lat": 1}, "dropoff": {"addressId": "a"}}
        ),
        422,
        "validation_error",
    )
    for lat, lon in ((1e308, 1e308), (90.5, 0), (0, -180.5)):  # finite, but no place on Earth
        point = {"lat": lat, "lon": lon}
        quote = {"pickup": point, "dropoff": {"addressId": "a"}}
        error_of(client.post("/api/v1/quotes", headers=headers, json=quote), 422, "validation_error")


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/v1/riders", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    error_of(response, 400, "bad_request")


def test_missing_forged_and_expired_tokens_are_401(client: TestClient) -> None:
    error = client.get("/api/v1/riders/me")
    error_of(error, 401, "unauthorized")
    assert error.headers["WWW-Authenticate"] == "Bearer"
    error_of(
        client.get("/api/v1/riders/me", headers={"Authorization": "Bearer abc.def"}), 401, "unauthorized"
    )
    valid = token_for(new_rider_id())
    forged = valid[:-2] + ("BB" if valid.endswith("AA") else "AA")  # never the valid signature itself
    error_of(client.get("/api/v1/riders/me", headers=auth(forged)), 401, "unauthorized")
    expired = token_for(new_rider_id(), ttl_s=-1)
    error_of(client.get("/api/v1/rides", headers=auth(expired)), 401, "unauthorized")


# --- riders ----------------------------------------------------------------------------------------
def test_rider_round_trip(client: TestClient) -> None:
    created = client.post("/api/v1/riders", json={"name": "  Ada Lovelace "})
    assert created.status_code == 201
    body = created.json()
    assert body["riderId"].startswith("rdr_")
    me = client.get("/api/v1/riders/me", headers=auth(body["token"]))
    assert me.json() == {
        "riderId": body["riderId"],
        "name": "Ada Lovelace",
        "rideCount": 0,
        "points": 0,
        "tier": "BRONZE",
        "rating": 5.0,
    }


# --- rides -----------------------------------------------------------------------------------------
def test_a_rider_sees_only_its_own_rides(client: TestClient, rider: tuple[str, Headers]) -> None:
    ride = book(client, rider[1])
    assert client.get(f"/api/v1/rides/{ride['rideId']}", headers=rider[1]).json()["rideId"] == ride["rideId"]
    other = auth(client.post("/api/v1/riders", json={"name": "Eve"}).json()["token"])
    error_of(client.get(f"/api/v1/rides/{ride['rideId']}", headers=other), 404, "ride_not_found")
    error_of(client.post(f"/api/v1/rides/{ride['rideId']}/cancel", headers=other), 404, "ride_not_found")
    assert client.get("/api/v1/rides", headers=other).json()["rides"] == []
    error_of(client.get("/api/v1/rides/bad%20id", headers=other), 404, "ride_not_found")


def test_idempotency_key_rules(client: TestClient, rider: tuple[str, Headers]) -> None:
    headers = rider[1]
    body = {"quoteId": "q1"}
    error_of(client.post("/api/v1/rides", headers=headers, json=body), 400, "idempotency_key_required")
    error_of(
        client.post("/api/v1/rides", headers={**headers, "Idempotency-Key": "k" * 129}, json=body),
        400,
        "bad_request",
    )
    error_of(
        client.post("/api/v1/rides", headers={**headers, "Idempotency-Key": ""}, json=body),
        400,
        "bad_request",
    )
    first, again = book(client, headers, "k" * 128), book(client, headers, "k" * 128)
    assert first["rideId"] == again["rideId"]


def test_dependency_down_is_503(client: TestClient, deps: Dependencies, rider: tuple[str, Headers]) -> None:
    deps.ride_manager.down = True  # type: ignore[attr-defined]
    error_of(client.get("/api/v1/rides", headers=rider[1]), 503, "dependency_unavailable")
    deps.addresses.down = True  # type: ignore[attr-defined]
    error_of(
        client.get("/api/v1/addresses/autocomplete?q=ru", headers=rider[1]), 503, "dependency_unavailable"
    )
    deps.loyalty.down = True  # type: ignore[attr-defined]
    error_of(client.get("/api/v1/riders/me", headers=rider[1]), 503, "dependency_unavailable")


def test_upstream_errors_pass_through(
    client: TestClient, deps: Dependencies, rider: tuple[str, Headers]
) -> None:
    deps.ride_manager.book_error = UpstreamError(409, "no_car_available", "no car near you")  # type: ignore[attr-defined]
    quote = client.post(
        "/api/v1/quotes", headers=rider[1], json={"pickup": {"addressId": "a"}, "dropoff": {"addressId": "b"}}
    ).json()
    error = error_of(
        client.post(
            "/api/v1/rides", headers={**rider[1], "Idempotency-Key": "x"}, json={"quoteId": quote["quoteId"]}
        ),
        409,
        "no_car_available",
    )
    assert error["message"] == "no car near you"
    error_of(
        client.get("/api/v1/addresses/reverse?lat=0&lon=0", headers=rider[1]), 422, "outside_service_area"
    )


def test_addresses_and_map(client: TestClient, deps: Dependencies, rider: tuple[str, Headers]) -> None:
    assert client.get("/api/v1/addresses/autocomplete?q=rue", headers=rider[1]).json()["results"]
    assert deps.addresses.calls[-1] == ("autocomplete", "rue", 5)  # type: ignore[attr-defined]
    assert client.get("/api/v1/map?bbox=2.2,48.8,2.4,48.9&zoom=13", headers=rider[1]).status_code == 200
    assert (
        client.get("/api/v1/addresses/reverse?lat=48.85&lon=2.35", headers=rider[1]).json()["addressId"]
        == "a1"
    )


def test_a_box_given_corner_to_corner_either_way_is_the_same_view(
    client: TestClient, deps: Dependencies, rider: tuple[str, Headers]
) -> None:
    assert client.get("/api/v1/map?bbox=2.4,48.9,2.2,48.8&zoom=13", headers=rider[1]).status_code == 200
    assert deps.addresses.calls[-1] == ("map", "2.2,48.8,2.4,48.9", 13)  # type: ignore[attr-defined]


def test_the_openapi_lists_every_refusal_with_the_error_body(client: TestClient) -> None:
    """What schemathesis checks on the live stack (tests/system/test_contract.py), here on the routes'
    declarations: the rider routes' 401/429/503, the codes passed on from ride-manager, the ops guard."""
    paths = client.get("/openapi.json").json()["paths"]
    book = paths["/api/v1/rides"]["post"]
    assert sorted(book["responses"]) == ["202", "400", "401", "404", "409", "413", "422", "429", "503"]
    assert book["responses"]["400"]["description"] == "bad_request, idempotency_key_required"
    assert "quote_already_used" in book["responses"]["409"]["description"]
    key = next(p for p in book["parameters"] if p["name"] == "idempotency-key")
    assert key["required"] and key["schema"]["maxLength"] == 128
    assert "401" in paths["/ops/fleet"]["get"]["responses"]
    for path in paths.values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                if status >= "400":
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"
                    }


def test_cancel_then_cancel_again(client: TestClient, rider: tuple[str, Headers]) -> None:
    ride = book(client, rider[1])
    first = client.post(f"/api/v1/rides/{ride['rideId']}/cancel", headers=rider[1])
    again = client.post(f"/api/v1/rides/{ride['rideId']}/cancel", headers=rider[1])
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["status"] == again.json()["status"] == "CANCELLED"


# --- read-your-writes ------------------------------------------------------------------------
def test_history_waits_for_the_riders_own_write(
    client: TestClient, deps: Dependencies, rider: tuple[str, Headers]
) -> None:
    manager: FakeRideManager = deps.ride_manager  # type: ignore[assignment]
    ride = book(client, rider[1])
    manager.projection_delay = manager.list_calls + 3  # the next 3 reads miss the new ride
    started = time.monotonic()
    rides = client.get("/api/v1/rides", headers=rider[1]).json()["rides"]
    assert [r["rideId"] for r in rides] == [ride["rideId"]]
    assert time.monotonic() - started < 2


def test_history_waits_for_a_cancellation(
    client: TestClient, deps: Dependencies, rider: tuple[str, Headers]
) -> None:
    manager: FakeRideManager = deps.ride_manager  # type: ignore[assignment]
    ride = book(client, rider[1])
    client.post(f"/api/v1/rides/{ride['rideId']}/cancel", headers=rider[1])
    manager.projection_delay = manager.list_calls + 2
    rides = client.get("/api/v1/rides", headers=rider[1]).json()["rides"]
    assert rides[0]["status"] == "CANCELLED"


def test_history_gives_up_after_two_seconds(
    client: TestClient, deps: Dependencies, rider: tuple[str, Headers]
) -> None:
    manager: FakeRideManager = deps.ride_manager  # type: ignore[assignment]
    book(client, rider[1])
    manager.projection_delay = 10**6
    started = time.monotonic()
    assert client.get("/api/v1/rides", headers=rider[1]).status_code == 200
    assert 1.5 < time.monotonic() - started < 3


def test_history_without_a_write_does_not_wait(
    client: TestClient, deps: Dependencies, rider: tuple[str, Headers]
) -> None:
    deps.ride_manager.add(ride_json("ride_old", rider[0], 3))  # type: ignore[attr-defined]
    assert client.get("/api/v1/rides?limit=5", headers=rider[1]).json()["rides"][0]["rideId"] == "ride_old"
    assert deps.ride_manager.list_calls == 1  # type: ignore[attr-defined]


# --- rate limit ------------------------------------------------------------------------------------
def test_rate_limit(client: TestClient, rider: tuple[str, Headers]) -> None:
    statuses = [client.get("/api/v1/riders/me", headers=rider[1]) for _ in range(60)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "a burst of 60 requests must hit the limit"
    error_of(limited[0], 429, "rate_limited")
    assert int(limited[0].headers["Retry-After"]) >= 1


@pytest.mark.parametrize("path", ["/", "/dashboard"])
def test_pages_and_docs(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<!doctype html>" in page.text.lower()
    assert client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
