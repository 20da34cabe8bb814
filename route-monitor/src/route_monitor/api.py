"""HTTP routes of route-monitor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from acr import clock
from acr.contract import errors
from acr.errors import NotFound
from acr.guards import OPS, admit
from acr.service import service_state
from route_monitor.domain import CarLeg, Point, Progress, RideTracking
from route_monitor.handlers import TelemetryStats
from route_monitor.ports import TrackingStore

router = APIRouter(prefix="/v1", dependencies=[admit("bff")])
ops_router = APIRouter(prefix="/v1/ops", dependencies=[OPS], tags=["ops"])


@dataclass(frozen=True)
class Monitor:
    """What the routes use."""

    tracking: TrackingStore
    telemetry: TelemetryStats


State = Annotated[Monitor, Depends(service_state)]


class RideNotFound(NotFound):
    code = "ride_not_found"


@router.get("/rides/{ride_id}/tracking", responses=errors(RideNotFound))
def tracking(ride_id: str, state: State) -> dict[str, Any]:
    """The ride's tracking state as measured from telemetry."""
    ride = state.tracking.rides([ride_id]).get(ride_id)
    if ride is None:
        raise RideNotFound(f"no telemetry seen for ride {ride_id}")
    return tracking_view(ride)


@ops_router.get("/telemetry")
def telemetry(state: State) -> dict[str, Any]:
    """Records processed, records per second, and the lag behind the newest record (ms)."""
    return state.telemetry.snapshot()


def tracking_view(ride: RideTracking) -> dict[str, Any]:
    """The public tracking state (``GET /v1/rides/{rideId}/tracking``)."""
    return {
        "rideId": ride.ride_id,
        "carId": ride.car_id,
        "phase": str(ride.phase),
        "lat": ride.lat,
        "lon": ride.lon,
        "simTime": ride.sim_time,
        "at": _text(ride.at),
        "target": _point(ride.target),
        "distanceMeters": round(ride.distance_m, 1),
        "tripStartedSimTime": ride.trip_started_sim,
        "tripStartedAt": _text(ride.trip_started_at),
        "completed": ride.completed,
        "completedAt": _text(ride.completed_at),
        "durationSeconds": ride.duration_s,
        "etaSeconds": ride.eta_seconds,
        "etaPushedAt": _text(ride.eta_pushed_at),
        "legs": [{"carId": car_id} | _leg(leg) for car_id, leg in ride.legs.items()],
        "version": ride.version,
        "lastProgress": _progress(ride.last_progress),
    }


def _leg(leg: CarLeg) -> dict[str, Any]:
    return {
        "arrived": leg.arrived,
        "started": leg.started,
        "stalled": leg.stalled,
        "distanceMeters": leg.distance_m,
        "progress": _progress(leg.progress),
    }


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else clock.iso(moment)


def _point(point: Point | None) -> dict[str, float] | None:
    return {"lat": point.lat, "lon": point.lon} if point else None


def _progress(progress: Progress | None) -> dict[str, float] | None:
    return {"lat": progress.lat, "lon": progress.lon, "simTime": progress.sim_time} if progress else None
