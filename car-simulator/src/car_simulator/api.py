"""HTTP routes of car-simulator: the cars, their stall controls and the telemetry stats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from acr.service import service_state
from car_simulator.domain import Car
from car_simulator.handlers import CarSimulator, ProgressSaver
from car_simulator.ports import TelemetryPublisher
from car_simulator.simulation import Simulation

router = APIRouter(prefix="/v1")


@dataclass(frozen=True)
class SimulatorState:
    """What the routes use."""

    simulator: CarSimulator
    telemetry: TelemetryPublisher
    saver: ProgressSaver


State = Annotated[SimulatorState, Depends(service_state)]


def car_summary(car: Car) -> dict[str, Any]:
    return {
        "carId": car.car_id,
        "phase": car.phase.value,
        "rideId": car.ride_id,
        "lat": car.lat,
        "lon": car.lon,
        "speedKmh": round(car.speed_kmh, 1),
    }


def car_detail(car: Car) -> dict[str, Any]:
    target = {"lat": car.target.lat, "lon": car.target.lon} if car.target else None
    return car_summary(car) | {
        "heading": round(car.heading, 1),
        "battery": round(car.battery, 2),
        "odometerM": round(car.odometer_m, 1),
        "target": target,
        "stalled": car.stalled,
    }


@router.get("/cars")
def list_cars(state: State) -> dict[str, Any]:
    return {"cars": state.simulator.locked(lambda sim: [car_summary(car) for car in sim.cars.values()])}


@router.get("/cars/{car_id}")
def get_car(car_id: str, state: State) -> dict[str, Any]:
    def detail(sim: Simulation) -> dict[str, Any]:
        return car_detail(sim.car(car_id)) | {"simTimeS": round(sim.sim_time_s, 1)}

    return state.simulator.locked(detail)


@router.post("/cars/{car_id}/stall")
def stall_car(car_id: str, state: State) -> dict[str, Any]:
    """The car stops (position frozen) and reports STALLED, keeping its ride, until reassigned."""

    def stall(sim: Simulation) -> dict[str, Any]:
        sim.stall(car_id)
        return car_detail(sim.car(car_id))

    return state.simulator.locked(stall)


@router.post("/cars/{car_id}/unstall")
def unstall_car(car_id: str, state: State) -> dict[str, Any]:
    """The car resumes what it was doing (for demos)."""

    def unstall(sim: Simulation) -> dict[str, Any]:
        sim.unstall(car_id)
        return car_detail(sim.car(car_id))

    return state.simulator.locked(unstall)


@router.get("/ops/telemetry")
def telemetry(state: State) -> dict[str, Any]:
    def fleet(sim: Simulation) -> dict[str, Any]:
        return {
            "movingCars": sim.moving_cars,
            "simTimeS": round(sim.sim_time_s, 1),
            "simSpeed": sim.sim_speed,
            "fleetSize": len(sim.cars),
        }

    return state.telemetry.stats() | state.simulator.locked(fleet) | {"carSaves": state.saver.stats()}
