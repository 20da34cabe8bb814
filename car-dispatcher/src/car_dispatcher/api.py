"""HTTP routes of car-dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from acr.contract import errors
from acr.guards import OPS, admit
from acr.service import service_state
from car_dispatcher.domain import (
    Assignment,
    AssignmentNotFound,
    Car,
    CarNotFound,
    NoCarInReach,
    NotOutOfService,
    OutsideServiceArea,
)
from car_dispatcher.handlers import DispatchControl, assignment_of, pickup_eta, return_to_service
from car_dispatcher.ports import FleetReadModel, FleetView, Roads, UnitOfWork
from car_dispatcher.projection import live_fleet

router = APIRouter(prefix="/v1", dependencies=[admit("ride-manager")])  # quotes and the saga's watchdog
fleet_router = APIRouter(prefix="/v1", dependencies=[admit("bff")])  # the dashboard's fleet
ops_router = APIRouter(prefix="/v1/ops", dependencies=[OPS], tags=["ops"])


@dataclass(frozen=True)
class CarDispatcher:
    """What the routes use."""

    unit_of_work: Callable[[], UnitOfWork]
    roads: Roads
    fleet: FleetView
    fleet_view: FleetReadModel
    control: DispatchControl
    max_pickup_eta_s: float


State = Annotated[CarDispatcher, Depends(service_state)]


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class DispatchSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paused: StrictBool


def _car(car: Car) -> dict[str, Any]:
    return {
        "carId": car.car_id,
        "state": car.state.value,
        "lat": car.lat,
        "lon": car.lon,
        "rideId": car.ride_id,
    }


@router.post("/pickup-eta", responses=errors(NoCarInReach, OutsideServiceArea))
def estimate_pickup(point: PointIn, state: State) -> dict[str, Any]:
    """The nearest available car's road ETA to this pickup (409 when none can come in time)."""
    best = pickup_eta(
        point.lat, point.lon, roads=state.roads, fleet=state.fleet, max_pickup_eta_s=state.max_pickup_eta_s
    )
    return {
        "carId": best.car_id,
        "etaSeconds": round(best.eta_s, 1),
        "distanceMeters": round(best.distance_m, 1),
    }


def _assignment(row: Assignment) -> dict[str, Any]:
    return {
        "rideId": row.ride_id,
        "status": row.status.value,
        "carId": row.car_id,
        "tripStarted": row.trip_started,
    }


@router.get("/assignments/{ride_id}", responses=errors(AssignmentNotFound))
def get_assignment(ride_id: str, state: State) -> dict[str, Any]:
    """Whether the fleet assigned a car to the ride (404 ``assignment_not_found`` before it heard of it)."""
    return _assignment(assignment_of(state.unit_of_work(), ride_id))


@fleet_router.get("/fleet")
def list_fleet(state: State) -> dict[str, Any]:
    """Every car with its state (the fleet view read model) and its freshest known position."""
    return {"cars": [_car(c) for c in live_fleet(state.fleet_view, state.fleet)]}


@ops_router.put("/dispatch")
def switch_dispatch(switch: DispatchSwitch, state: State) -> dict[str, bool]:
    state.control.paused = switch.paused
    return {"paused": state.control.paused}


@ops_router.get("/dispatch")
def dispatch_state(state: State) -> dict[str, bool]:
    return {"paused": state.control.paused}


@ops_router.post("/cars/{car_id}/return-to-service", responses=errors(CarNotFound, NotOutOfService))
def return_car_to_service(car_id: str, state: State) -> dict[str, Any]:
    return _car(return_to_service(state.unit_of_work(), car_id, fleet=state.fleet))
