"""Attacks on the internal services, called directly on their own ports as any workload on the network
could: no credential, a forged one (another key), the BFF's key for another audience, a rider's BFF token,
an expired one, a service the route does not admit, and ops routes without the ops token. Each is refused
(401/403 with the standard error body) and nothing changed: the ride, the payment ledger and the gateway's
mode, the cars, the dispatch pause.

The module pauses dispatch (through the BFF's ops API, with the stack's token) so that the rider's ride
and the cars hold still while they are attacked."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from rider_client import Ops, Rider, book_ride

from acr.identity import ServiceCredentials, new_private_key, service_token
from acr.settings import Settings
from acr_stack import Stack

pytestmark = pytest.mark.integration

Headers = dict[str, str]


def _ops_token(stack: Stack) -> str:
    return stack.config.service_env("bff").get("ACR_OPS_TOKEN") or Settings().ops_token


def _bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def _as(stack: Stack, caller: str, callee: str, rider: str | None = None) -> Headers:
    """A valid token of ``caller`` for ``callee``, minted with the stack's own key of ``caller``."""
    return _bearer(service_token(stack.config.service_env(caller), caller, callee, rider))


def _forgeries(stack: Stack, callee: str, rider: Rider) -> dict[str, tuple[Headers, int]]:
    """Every wrong service credential for ``callee`` (acting for ``rider`` where a rider is named), and the
    status it must get."""
    bff_key = stack.config.service_env("bff")["ACR_SERVICE_KEY"]
    expired = ServiceCredentials("bff", private_key=bff_key, now=lambda: time.time() - 600)
    other_audience = "reward" if callee != "reward" else "payment"
    return {
        "no credential": ({}, 401),
        "signed by another key": (
            _bearer(ServiceCredentials("bff", private_key=new_private_key()).token(callee, rider.rider_id)),
            401,
        ),
        "the BFF's key for another service": (_as(stack, "bff", other_audience, rider.rider_id), 401),
        "a rider's BFF token": (_bearer(rider.token), 401),
        "expired": (_bearer(expired.token(callee, rider.rider_id)), 401),
        "a service it does not admit": (_as(stack, "car-simulator", callee, rider.rider_id), 403),
    }


def _ops_forgeries(stack: Stack, callee: str) -> dict[str, tuple[Headers, int]]:
    return {
        "no ops token": ({}, 401),
        "a wrong ops token": ({"X-Ops-Token": "x" + _ops_token(stack)}, 401),
        "a valid service token, no ops token": (_as(stack, "bff", callee), 401),
    }


def _refused(
    url: str, method: str, path: str, forgeries: dict[str, tuple[Headers, int]], body: Any = None
) -> None:
    for what, (headers, status) in forgeries.items():
        answer = httpx.request(method, url + path, headers=headers, json=body, timeout=10)
        code = "unauthorized" if status == 401 else "forbidden"
        assert (answer.status_code, answer.json()) == (
            status,
            {"error": {"code": code, "message": answer.json()["error"]["message"]}},
        ), f"{method} {path} with {what}: {answer.status_code} {answer.text}"


@pytest.fixture(scope="module")
def ops(attack_stack: Stack) -> Iterator[Ops]:
    """The BFF's ops API, dispatch paused for the module (rides wait, cars stay put)."""
    ops = Ops(attack_stack.config.url("bff"))
    assert ops.call("PUT", "/dispatch", {"paused": True}).status_code == 200
    yield ops
    ops.call("PUT", "/dispatch", {"paused": False})


@pytest.fixture(scope="module")
def rider(attack_stack: Stack, ops: Ops) -> Rider:
    return Rider.sign_up(attack_stack.config.url("bff"), "Attacked")


def _unchanged(read: Callable[[], Any], attack: Callable[[], None]) -> None:
    before = read()
    attack()
    assert read() == before


def test_calling_ride_manager_directly_without_or_with_a_wrong_credential_is_refused(
    attack_stack: Stack, rider: Rider
) -> None:
    ride = book_ride(rider, random.Random(14))
    ride_id, url = ride["rideId"], attack_stack.config.url("ride-manager")
    forgeries = _forgeries(attack_stack, "ride-manager", rider)
    quote = {"pickup": {"lat": 0.0, "lon": 0.0}, "dropoff": {"lat": 0.0, "lon": 0.0}}

    def attack() -> None:
        _refused(url, "GET", f"/v1/rides/{ride_id}", forgeries)
        _refused(url, "GET", "/v1/rides", forgeries)
        _refused(url, "POST", f"/v1/rides/{ride_id}/cancel?riderId={rider.rider_id}", forgeries)
        _refused(url, "POST", "/v1/quotes", forgeries, {"riderId": rider.rider_id, **quote})
        _refused(url, "POST", f"/v1/ops/rides/{ride_id}/cancel", _ops_forgeries(attack_stack, "ride-manager"))
        _refused(url, "GET", "/v1/ops/rides", _ops_forgeries(attack_stack, "ride-manager"))

    _unchanged(lambda: {k: v for k, v in rider.ride(ride_id).items() if k != "eta"}, attack)
    assert rider.ride(ride_id)["status"] == "REQUESTED"


def test_calling_payment_directly_without_the_ops_credential_is_refused(attack_stack: Stack) -> None:
    url, ops = attack_stack.config.url("payment"), {"X-Ops-Token": _ops_token(attack_stack)}
    forgeries = _ops_forgeries(attack_stack, "payment")

    def ledger() -> Any:
        mode = httpx.get(url + "/v1/ops/gateway", headers=ops, timeout=10).json()
        return mode, httpx.get(url + "/v1/ops/gateway/charges", headers=ops, timeout=10).json()

    def attack() -> None:
        _refused(url, "PUT", "/v1/ops/gateway", forgeries, {"mode": "decline"})
        _refused(url, "POST", "/v1/ops/payments/ride_0/retry", forgeries)
        _refused(url, "GET", "/v1/ops/gateway/charges", forgeries)
        _refused(url, "GET", "/v1/ops/payments/ride_0", forgeries)

    _unchanged(ledger, attack)
    assert ledger()[0] == {"mode": "ok"}


def test_calling_car_dispatcher_directly_without_or_with_a_wrong_credential_is_refused(
    attack_stack: Stack, rider: Rider
) -> None:
    url, ops = attack_stack.config.url("car-dispatcher"), {"X-Ops-Token": _ops_token(attack_stack)}
    car_id = "car-00001"

    def fleet() -> Any:
        paused = httpx.get(url + "/v1/ops/dispatch", headers=ops, timeout=10).json()
        cars = httpx.get(url + "/v1/fleet", headers=_as(attack_stack, "bff", "car-dispatcher"), timeout=10)
        return paused, {car["carId"]: car["state"] for car in cars.json()["cars"]}

    def attack() -> None:
        _refused(
            url, "PUT", "/v1/ops/dispatch", _ops_forgeries(attack_stack, "car-dispatcher"), {"paused": False}
        )
        _refused(
            url,
            "POST",
            f"/v1/ops/cars/{car_id}/return-to-service",
            _ops_forgeries(attack_stack, "car-dispatcher"),
        )
        _refused(url, "GET", "/v1/fleet", _forgeries(attack_stack, "car-dispatcher", rider))
        _refused(
            url,
            "POST",
            "/v1/pickup-eta",
            _forgeries(attack_stack, "car-dispatcher", rider),
            {"lat": 0, "lon": 0},
        )

    _unchanged(fleet, attack)
    assert fleet()[0] == {"paused": True}


def test_calling_car_simulator_directly_without_or_with_a_wrong_credential_is_refused(
    attack_stack: Stack, rider: Rider
) -> None:
    url, car_id = attack_stack.config.url("car-simulator"), "car-00001"
    forgeries = _ops_forgeries(attack_stack, "car-simulator")

    def car() -> Any:
        answer = httpx.get(
            f"{url}/v1/cars/{car_id}", headers=_as(attack_stack, "bff", "car-simulator"), timeout=10
        )
        return {k: answer.json()[k] for k in ("carId", "phase", "rideId")}

    def attack() -> None:
        _refused(url, "POST", f"/v1/ops/cars/{car_id}/stall", forgeries)
        _refused(url, "POST", f"/v1/ops/cars/{car_id}/unstall", forgeries)
        _refused(url, "GET", f"/v1/cars/{car_id}", _forgeries(attack_stack, "car-simulator", rider))
        time.sleep(1)  # a stall that got through would be applied by the car's driver within ~0.5 s

    _unchanged(car, attack)
    assert car()["phase"] != "STALLED"
