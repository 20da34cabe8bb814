"""HTTP routes of car-simulator (thin: the use cases live in ``handlers``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from acr.web import ApiError
from car_simulator.adapters.kinesis import KinesisPublisher
from car_simulator.handlers import CarSimulator
from car_simulator.simulation import UnknownCar

router = APIRouter(prefix="/v1")


def _simulator(request: Request) -> CarSimulator:
    return request.app.state.simulator  # type: ignore[no-any-return]


def _publisher(request: Request) -> KinesisPublisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


Simulator = Annotated[CarSimulator, Depends(_simulator)]
Publisher = Annotated[KinesisPublisher, Depends(_publisher)]


def _not_found(car_id: str) -> ApiError:
    return ApiError(404, "car_not_found", f"no car {car_id}")


@router.get("/cars")
def list_cars(simulator: Simulator) -> dict[str, Any]:
    return {"cars": simulator.cars()}


@router.get("/cars/{car_id}")
def get_car(car_id: str, simulator: Simulator) -> dict[str, Any]:
    try:
        return simulator.car(car_id)
    except UnknownCar:
        raise _not_found(car_id) from None


@router.post("/cars/{car_id}/stall")
def stall_car(car_id: str, simulator: Simulator) -> dict[str, Any]:
    """The car stops (position frozen) and reports STALLED, keeping its ride, until reassigned."""
    try:
        return simulator.stall(car_id)
    except UnknownCar:
        raise _not_found(car_id) from None


@router.post("/cars/{car_id}/unstall")
def unstall_car(car_id: str, simulator: Simulator) -> dict[str, Any]:
    """The car resumes what it was doing (for demos)."""
    try:
        return simulator.unstall(car_id)
    except UnknownCar:
        raise _not_found(car_id) from None


@router.get("/ops/telemetry")
def telemetry(simulator: Simulator, publisher: Publisher) -> dict[str, Any]:
    stats = publisher.stats()
    with simulator.lock:
        sim = simulator.simulation
        clock = {"simTimeS": round(sim.sim_time_s, 1), "simSpeed": sim.sim_speed, "fleetSize": len(sim.cars)}
    return stats | {"movingCars": simulator.moving_cars()} | clock
