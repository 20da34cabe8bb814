"""address-finder over HTTP on the small city: answers, and a clear 4xx for every bad query."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from acr_testkit.identity import settings_for, signed
from address_finder.bootstrap import SERVICE


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """The service as it starts: its wiring loads the small city its settings name."""
    app = SERVICE.app(settings=settings_for("address-finder", city="small", seed=42))
    with signed(TestClient(app), "ride-manager", "address-finder") as client:
        yield client


def _some_address(client: TestClient) -> dict[str, object]:
    bounds = client.get("/v1/city").json()["bounds"]
    lat, lon = (bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2
    return client.get("/v1/reverse", params={"lat": lat, "lon": lon}).json()


def test_reverse_geocode_and_autocomplete_agree(client: TestClient) -> None:
    address = _some_address(client)
    assert address["distanceMeters"] >= 0
    found = client.get("/v1/geocode", params={"q": address["label"]}).json()
    assert found["addressId"] == address["addressId"] and 0 < found["confidence"] <= 1
    street = str(address["label"]).split(",")[0].split(" ", 1)[1]
    results = client.get("/v1/autocomplete", params={"q": street[:-1], "limit": 5}).json()["results"]
    assert results and all(street.split()[0] in r["label"] for r in results)
    assert client.get(f"/v1/addresses/{address['addressId']}").json()["label"] == address["label"]


def test_routes_and_map_views_are_bounded(client: TestClient) -> None:
    bounds = client.get("/v1/city").json()["bounds"]
    route = client.get(
        "/v1/route",
        params={
            "fromLat": bounds[1] + 0.01,
            "fromLon": bounds[0] + 0.01,
            "toLat": bounds[3] - 0.01,
            "toLon": bounds[2] - 0.01,
        },
    ).json()
    assert route["distanceMeters"] > 0 and route["durationSeconds"] > 0
    view = client.get("/v1/map", params={"bbox": ",".join(map(str, bounds)), "zoom": 12}).json()
    assert view["bounds"] == bounds and sum(len(s["points"]) for s in view["streets"]) <= 20000


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/autocomplete", {"q": ""}, 422, "validation_error"),
        ("/v1/autocomplete", {"q": "x" * 10_000}, 422, "validation_error"),
        ("/v1/autocomplete", {"q": "Main\x00\x07 Street"}, 422, "validation_error"),
        ("/v1/autocomplete", {"q": "main", "limit": 0}, 422, "validation_error"),
        ("/v1/geocode", {"q": "\x1b[31m"}, 422, "validation_error"),
        ("/v1/reverse", {"lat": "nan", "lon": "24.9"}, 422, "validation_error"),
        ("/v1/reverse", {"lat": "inf", "lon": "24.9"}, 422, "validation_error"),
        ("/v1/reverse", {"lat": "10", "lon": "10"}, 422, "outside_service_area"),
        ("/v1/reverse", {"lat": "north", "lon": "24.9"}, 422, "validation_error"),
        ("/v1/map", {"bbox": "1,2,3"}, 422, "validation_error"),
        ("/v1/map", {"bbox": "a,b,c,d"}, 422, "validation_error"),
        ("/v1/addresses/nope", {}, 404, "address_not_found"),
        ("/v1/nowhere", {}, 404, "not_found"),
    ],
)
def test_bad_queries_get_a_4xx_with_a_code(
    client: TestClient, path: str, params: dict[str, str], status: int, code: str
) -> None:
    response = client.get(path, params=params)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


def test_the_service_serves_the_city_its_settings_name(client: TestClient) -> None:
    city = client.get("/v1/city").json()
    assert city["name"] == "Smallville" and city["addresses"] > 0 and city["nodes"] > 0
    assert client.get("/healthz").json() == {"status": "ok", "service": "address-finder"}
