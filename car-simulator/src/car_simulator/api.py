"""HTTP routes of car-simulator: the cars, their stall controls and the telemetry stats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from acr.contract import errors
from acr.guards import OPS, admit
from acr.service import service_state
from car_simulator.domain import Car, CommandKind
from car_simulator.handlers import (
    CarSimulator,
    CommandApplier,
    Fleet,
    FleetGroups,
    ProgressSaver,
    cars_as_stored,
    operator_command,
)
from car_simulator.ports import CarStore, Mailbox, TelemetryPublisher
from car_simulator.simulation import Simulation, UnknownCar

router = APIRouter(prefix="/v1", dependencies=[admit("bff")])
ops_router = APIRouter(prefix="/v1/ops", dependencies=[OPS], tags=["ops"])  # stalls, telemetry


@dataclass(frozen=True)
class SimulatorState:
    """What the routes use."""

    simulator: CarSimulator
    telemetry: TelemetryPublisher
    saver: ProgressSaver
    groups: FleetGroups
    applier: CommandApplier
    store: CarStore
    mailbox: Mailbox
    fleet: Fleet


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


def _fleet_now(state: SimulatorState, car_ids: list[str]) -> list[Car]:
    """The cars as they are now: live where this replica drives them, else as their driver last saved
    them (a moving car's row is at most ``ACR_CAR_SAVE_EVERY_S`` behind, a phase change at most a second)."""
    live = state.simulator.locked(
        lambda sim: {cid: sim.cars[cid].copy() for cid in car_ids if cid in sim.cars}
    )
    others = [state.fleet.cars[cid] for cid in car_ids if cid not in live]
    stored = cars_as_stored(state.groups.seed, others, state.store.load(c.car_id for c in others))
    return sorted([*live.values(), *stored], key=lambda car: car.car_id)


@router.get("/cars")
def list_cars(state: State) -> dict[str, Any]:
    """The whole fleet, whichever replica is asked."""
    return {"cars": [car_summary(car) for car in _fleet_now(state, sorted(state.fleet.cars))]}


@router.get("/cars/{car_id}", responses=errors(UnknownCar))
def get_car(car_id: str, state: State) -> dict[str, Any]:
    if car_id not in state.fleet.cars:
        raise UnknownCar(f"no car {car_id}")
    [car] = _fleet_now(state, [car_id])
    return car_detail(car) | {"simTimeS": round(state.simulator.locked(lambda sim: sim.sim_time_s), 1)}


def _command(state: SimulatorState, car_id: str, kind: CommandKind) -> dict[str, Any]:
    command = operator_command(state.mailbox, state.fleet, car_id, kind)
    return {"carId": car_id, "command": kind.value, "commandId": command.command_id}


@ops_router.post("/cars/{car_id}/stall", status_code=202, responses=errors(UnknownCar))
def stall_car(car_id: str, state: State) -> dict[str, Any]:
    """The car stops (position frozen) and reports STALLED, keeping its ride, until reassigned. Posted to
    the car's mailbox: the replica driving it applies it within about half a second."""
    return _command(state, car_id, CommandKind.STALL)


@ops_router.post("/cars/{car_id}/unstall", status_code=202, responses=errors(UnknownCar))
def unstall_car(car_id: str, state: State) -> dict[str, Any]:
    """The car resumes what it was doing (for demos), through its mailbox like a stall."""
    return _command(state, car_id, CommandKind.UNSTALL)


@ops_router.get("/telemetry")
def telemetry(state: State) -> dict[str, Any]:
    def fleet(sim: Simulation) -> dict[str, Any]:
        return {
            "movingCars": sim.moving_cars,
            "simTimeS": round(sim.sim_time_s, 1),
            "simSpeed": sim.sim_speed,
            "fleetSize": len(state.fleet.cars),
            "carsDrivenHere": len(sim.cars),
        }

    groups = {"groupsHeld": sorted(state.groups.held()), "commandsApplied": state.applier.applied}
    return (
        state.telemetry.stats() | state.simulator.locked(fleet) | groups | {"carSaves": state.saver.stats()}
    )
