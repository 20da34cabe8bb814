"""The stored form of a car: a DynamoDB item of the cars table (camelCase keys; the legs as their
polylines and durations, so a car read back drives the same streets)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from acr.catalog.car import CarPhase
from car_simulator.domain import (
    CLOSED_RIDES_KEPT,
    Assignment,
    Car,
    CarCommand,
    CommandKind,
    Leg,
    Point,
    Snapshot,
)

Item = dict[str, Any]

PROGRESS = (
    "version",
    "activity",
    "stalled",
    "rideId",
    "travelledM",
    "boardingLeftS",
    "lat",
    "lon",
    "heading",
    "battery",
    "odometerM",
    "closedRides",
    "simTimeS",
)
"""What a progress save writes (everything but the key and the assignment)."""


def car_item(snapshot: Snapshot) -> Item:
    """The whole row (None values are left out of the item)."""
    car = snapshot.car
    assignment = _assignment_item(car.assignment) if car.assignment else None
    return {"carId": car.car_id, "assignment": assignment} | progress_item(snapshot)


def progress_item(snapshot: Snapshot) -> Item:
    """The attributes of ``PROGRESS``."""
    car = snapshot.car
    return {
        "version": car.version,
        "activity": car.activity.value,
        "stalled": car.stalled,
        "rideId": car.ride_id,
        "travelledM": car.travelled_m,
        "boardingLeftS": car.boarding_left_s,
        "lat": car.lat,
        "lon": car.lon,
        "heading": car.heading,
        "battery": car.battery,
        "odometerM": car.odometer_m,
        "closedRides": list(car.closed_rides),
        "simTimeS": snapshot.sim_time_s,
    }


def snapshot_from_item(item: Mapping[str, Any]) -> Snapshot:
    """The car as its row holds it, on its leg again."""
    assignment = item.get("assignment")
    car = Car(
        car_id=item["carId"],
        lat=float(item["lat"]),
        lon=float(item["lon"]),
        battery=float(item["battery"]),
        odometer_m=float(item["odometerM"]),
        heading=float(item["heading"]),
        activity=CarPhase(item["activity"]),
        ride_id=item.get("rideId"),
        stalled=bool(item["stalled"]),
        assignment=_assignment(assignment) if assignment else None,
        travelled_m=float(item["travelledM"]),
        boarding_left_s=float(item["boardingLeftS"]),
        closed_rides=deque(item.get("closedRides") or [], maxlen=CLOSED_RIDES_KEPT),
        version=int(item["version"]),
    )
    return Snapshot(car.resume(), float(item["simTimeS"]))


def _assignment_item(assignment: Assignment) -> Item:
    return {
        "rideId": assignment.ride_id,
        "pickup": _point_item(assignment.pickup),
        "dropoff": _point_item(assignment.dropoff),
        "toPickup": _leg_item(assignment.to_pickup),
        "toDropoff": _leg_item(assignment.to_dropoff),
        "boardingS": assignment.boarding_s,
        "sequence": assignment.sequence,
    }


def _assignment(item: Mapping[str, Any]) -> Assignment:
    return Assignment(
        ride_id=item["rideId"],
        pickup=_point(item["pickup"]),
        dropoff=_point(item["dropoff"]),
        to_pickup=_leg(item["toPickup"]),
        to_dropoff=_leg(item["toDropoff"]),
        boarding_s=float(item["boardingS"]),
        sequence=int(item["sequence"]) if item.get("sequence") is not None else None,
    )


def _leg_item(leg: Leg) -> Item:
    return {"path": [[lat, lon] for lat, lon in leg.path], "durationS": leg.duration_s}


def _leg(item: Mapping[str, Any]) -> Leg:
    return Leg([(float(lat), float(lon)) for lat, lon in item["path"]], float(item["durationS"]))


def _point_item(point: Point) -> dict[str, float]:
    return {"lat": point.lat, "lon": point.lon}


def _point(item: Mapping[str, Any]) -> Point:
    return Point(float(item["lat"]), float(item["lon"]))


def command_item(command: CarCommand) -> Item:
    """A command as its group's mailbox keeps it (None values left out)."""
    item: Item = {"commandId": command.command_id, "carId": command.car_id, "kind": command.kind.value}
    if command.ride_id is not None:
        item["rideId"] = command.ride_id
    if command.pickup is not None and command.dropoff is not None:
        item |= {"pickup": _point_item(command.pickup), "dropoff": _point_item(command.dropoff)}
    if command.sequence is not None:
        item["sequence"] = command.sequence
    return item


def command_from_item(item: Mapping[str, Any]) -> CarCommand:
    return CarCommand(
        command_id=item["commandId"],
        car_id=item["carId"],
        kind=CommandKind(item["kind"]),
        ride_id=item.get("rideId"),
        pickup=_point(item["pickup"]) if "pickup" in item else None,
        dropoff=_point(item["dropoff"]) if "dropoff" in item else None,
        sequence=int(item["sequence"]) if "sequence" in item else None,
    )
