"""HTTP routes of car-dispatcher."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, field_validator

from acr.web import ApiError
from car_dispatcher.domain import Car
from car_dispatcher.handlers import CarNotFound, Dispatcher, NotOutOfService

router = APIRouter(prefix="/v1")


def _dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


Dispatch = Annotated[Dispatcher, Depends(_dispatcher)]


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float
    lon: float

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class DispatchSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paused: bool


def _car(car: Car) -> dict[str, Any]:
    return {
        "carId": car.car_id,
        "state": car.state.value,
        "lat": car.lat,
        "lon": car.lon,
        "rideId": car.ride_id,
    }


@router.post("/pickup-eta")
def pickup_eta(point: PointIn, dispatcher: Dispatch) -> dict[str, Any]:
    """The nearest available car's road ETA to this pickup (409 when none can come in time)."""
    if not dispatcher.roads.contains(point.lat, point.lon):
        raise ApiError(422, "outside_service_area", "that place is outside the service area")
    best = dispatcher.pickup_eta(point.lat, point.lon)
    if best is None:
        raise ApiError(409, "no_car_available", "no car can reach the pickup in time right now")
    return {
        "carId": best.car_id,
        "etaSeconds": round(best.eta_s, 1),
        "distanceMeters": round(best.distance_m, 1),
    }


@router.get("/fleet")
def fleet(dispatcher: Dispatch) -> dict[str, Any]:
    """Every car with its state and live position."""
    return {"cars": [_car(c) for c in dispatcher.fleet.all()]}


@router.put("/ops/dispatch")
def switch_dispatch(switch: DispatchSwitch, dispatcher: Dispatch) -> dict[str, bool]:
    dispatcher.control.paused = switch.paused
    return {"paused": dispatcher.control.paused}


@router.get("/ops/dispatch")
def dispatch_state(dispatcher: Dispatch) -> dict[str, bool]:
    return {"paused": dispatcher.control.paused}


@router.post("/ops/cars/{car_id}/return-to-service")
def return_to_service(car_id: str, dispatcher: Dispatch) -> dict[str, Any]:
    try:
        return _car(dispatcher.return_to_service(car_id))
    except CarNotFound as exc:
        raise ApiError(404, "car_not_found", f"no car {car_id}") from exc
    except NotOutOfService as exc:
        raise ApiError(409, "not_out_of_service", f"car {car_id} is in service") from exc
