"""The stored form of the tracking state: car cursors and ride tracking rows as DynamoDB items
(camelCase keys, times as ISO 8601 text)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from acr import clock
from acr.catalog.car import CarPhase
from route_monitor.domain import COMPLETED, CarCursor, CarLeg, Point, Progress, RidePhase, RideTracking

Item = dict[str, Any]


def car_item(car: CarCursor) -> Item:
    return {
        "carId": car.car_id,
        "rideId": car.ride_id,
        "phase": str(car.phase),
        "simTime": car.sim_time,
        "odometerM": car.odometer_m,
        "lat": car.lat,
        "lon": car.lon,
        "target": _point_item(car.target),
        "seen": list(car.seen),
        "samples": [[t, o] for t, o in car.samples],
        "shard": car.shard,
        "version": car.version,
    }


def car_from_item(item: Mapping[str, Any]) -> CarCursor:
    return CarCursor(
        car_id=item["carId"],
        ride_id=item.get("rideId"),
        phase=CarPhase(item.get("phase", CarPhase.IDLE)),
        sim_time=_opt_float(item.get("simTime")),
        odometer_m=float(item.get("odometerM", 0.0)),
        lat=float(item.get("lat", 0.0)),
        lon=float(item.get("lon", 0.0)),
        target=_point(item.get("target")),
        seen=list(item.get("seen") or []),
        samples=[(float(t), float(o)) for t, o in item.get("samples") or []],
        shard=item.get("shard"),
        version=int(item.get("version", 0)),
    )


def ride_item(ride: RideTracking) -> Item:
    return {
        "rideId": ride.ride_id,
        "carId": ride.car_id,
        "phase": str(ride.phase),
        "lat": ride.lat,
        "lon": ride.lon,
        "simTime": ride.sim_time,
        "at": _text(ride.at),
        "target": _point_item(ride.target),
        "distanceMeters": ride.distance_m,
        "tripStartedSimTime": ride.trip_started_sim,
        "tripStartedAt": _text(ride.trip_started_at),
        "completed": ride.completed,
        "completedAt": _text(ride.completed_at),
        "durationSeconds": ride.duration_s,
        "etaSeconds": ride.eta_seconds,
        "etaPushedAt": _text(ride.eta_pushed_at),
        "legs": {car_id: _leg_item(leg) for car_id, leg in ride.legs.items()},
        "version": ride.version,
    }


def ride_from_item(item: Mapping[str, Any]) -> RideTracking:
    return RideTracking(
        ride_id=item["rideId"],
        car_id=item.get("carId"),
        phase=_ride_phase(item.get("phase")),
        lat=_opt_float(item.get("lat")),
        lon=_opt_float(item.get("lon")),
        sim_time=_opt_float(item.get("simTime")),
        at=_moment(item.get("at")),
        target=_point(item.get("target")),
        distance_m=float(item.get("distanceMeters", 0.0)),
        trip_started_sim=_opt_float(item.get("tripStartedSimTime")),
        trip_started_at=_moment(item.get("tripStartedAt")),
        completed=bool(item.get("completed")),
        completed_at=_moment(item.get("completedAt")),
        duration_s=_opt_float(item.get("durationSeconds")),
        eta_seconds=_opt_float(item.get("etaSeconds")),
        eta_pushed_at=_moment(item.get("etaPushedAt")),
        legs={car_id: _leg(leg) for car_id, leg in (item.get("legs") or {}).items()},
        version=int(item.get("version", 0)),
    )


def _leg_item(leg: CarLeg) -> Item:
    return {
        "arrived": leg.arrived,
        "started": leg.started,
        "stalled": leg.stalled,
        "distanceMeters": leg.distance_m,
        "progress": _progress_item(leg.progress),
    }


def _leg(item: Mapping[str, Any]) -> CarLeg:
    return CarLeg(
        arrived=bool(item.get("arrived")),
        started=bool(item.get("started")),
        stalled=bool(item.get("stalled")),
        distance_m=float(item.get("distanceMeters", 0.0)),
        progress=_progress(item.get("progress")),
    )


def _ride_phase(value: str | None) -> RidePhase:
    return COMPLETED if value == COMPLETED else CarPhase(value or CarPhase.IDLE)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else clock.iso(moment)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else clock.parse(text)


def _point(item: Mapping[str, Any] | None) -> Point | None:
    return Point(float(item["lat"]), float(item["lon"])) if item else None


def _point_item(point: Point | None) -> dict[str, float] | None:
    return {"lat": point.lat, "lon": point.lon} if point else None


def _progress(item: Mapping[str, Any] | None) -> Progress | None:
    return Progress(float(item["lat"]), float(item["lon"]), float(item["simTime"])) if item else None


def _progress_item(progress: Progress | None) -> dict[str, float] | None:
    return {"lat": progress.lat, "lon": progress.lon, "simTime": progress.sim_time} if progress else None
