"""The HTTP adapter to car-dispatcher's assignments, over a mock transport: what each answer means to the
watchdog."""

from __future__ import annotations

import httpx
import pytest

from acr.errors import DependencyUnavailable
from ride_manager.adapters.http import HttpDispatch, HttpGeo
from ride_manager.domain import AddressNotFound

ANSWERS: dict[str, httpx.Response] = {
    "ride_assigned": httpx.Response(200, json={"rideId": "r", "status": "ASSIGNED", "carId": "car-1"}),
    "ride_completed": httpx.Response(200, json={"rideId": "r", "status": "COMPLETED", "carId": "car-2"}),
    "ride_cancelled": httpx.Response(200, json={"rideId": "r", "status": "CANCELLED", "carId": "car-3"}),
    "ride_no_car": httpx.Response(200, json={"rideId": "r", "status": "NO_CAR", "carId": None}),
    "ride_unknown": httpx.Response(404, json={"error": {"code": "assignment_not_found", "message": "-"}}),
    "ride_broken": httpx.Response(500, json={"error": {"code": "internal_error", "message": "-"}}),
}


def _dispatch() -> HttpDispatch:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.url.path.startswith("/v1/assignments/")
        return ANSWERS[request.url.path.rsplit("/", 1)[1]]

    return HttpDispatch(httpx.Client(transport=httpx.MockTransport(answer)), "http://car-dispatcher")


@pytest.mark.parametrize(
    ("ride_id", "car_id"),
    [
        ("ride_assigned", "car-1"),
        ("ride_completed", "car-2"),
        ("ride_cancelled", None),
        ("ride_no_car", None),
        ("ride_unknown", None),
    ],
)
def test_the_car_the_fleet_assigned_to_a_ride(ride_id: str, car_id: str | None) -> None:
    assert _dispatch().assigned_car(ride_id) == car_id


def test_a_fleet_that_fails_or_does_not_answer_is_unavailable() -> None:
    with pytest.raises(DependencyUnavailable):
        _dispatch().assigned_car("ride_broken")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = HttpDispatch(httpx.Client(transport=httpx.MockTransport(refuse)), "http://car-dispatcher")
    with pytest.raises(DependencyUnavailable):
        down.assigned_car("ride_assigned")


def test_an_address_id_is_one_path_segment_of_the_address_finder_url() -> None:
    """``../city`` must not walk up to another route of address-finder (whose answer is no place)."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"error": {"code": "address_not_found", "message": "-"}})

    geo = HttpGeo(httpx.Client(transport=httpx.MockTransport(answer)), "http://address-finder")
    with pytest.raises(AddressNotFound):
        geo.place_of_address("../city")
    assert asked == ["/v1/addresses/..%2Fcity"]
