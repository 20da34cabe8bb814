"""DynamoDB adapters of the fleet context."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from acr import dynamo
from acr.catalog.base import Place
from acr.catalog.fleet import FleetCarUpdated
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from acr.fleet import FleetCar
from acr.kinesis import save_checkpoint
from acr.projection_store import on_copy, put_newer
from acr.projections import Projection, copy_name
from acr.stream import Checkpoint
from car_dispatcher.domain import Assignment, AssignmentStatus, Car, CarState
from car_dispatcher.handlers import add_cars
from car_dispatcher.ports import Position, UnitOfWork
from car_dispatcher.topology import ASSIGNMENTS, CARS, FLEET

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _car(item: dict[str, Any]) -> Car:
    return Car(
        item["carId"],
        CarState(item["state"]),
        float(item["lat"]),
        float(item["lon"]),
        item.get("rideId"),
        int(item.get("version", 0)),
    )


def _scan(dynamodb: DynamoDBClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = dynamodb.scan(TableName=CARS, ConsistentRead=True)
    while True:
        items += [dynamo.from_item(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return items
        page = dynamodb.scan(TableName=CARS, ConsistentRead=True, ExclusiveStartKey=page["LastEvaluatedKey"])


class DynamoCars:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, car_id: str) -> Car | None:
        item = dynamo.get(self._base.dynamodb, CARS, {"carId": car_id})
        return _car(item) if item else None

    def all(self) -> list[Car]:
        return all_cars(self._base.dynamodb)

    def add(self, car: Car) -> None:
        item = {"carId": car.car_id, "state": car.state.value, "lat": car.lat, "lon": car.lon}
        self._base.tx.put(
            CARS,
            item | {"version": car.version} | ({"rideId": car.ride_id} if car.ride_id else {}),
            label="car",
            condition="attribute_not_exists(carId)",
        )

    def reserve(self, car: Car, ride_id: str) -> None:
        """Only a car still AVAILABLE as it was read can be reserved: two rides never get one car."""
        self._base.tx.update(
            CARS,
            {"carId": car.car_id},
            "SET #s = :r, rideId = :ride, version = version + :one",
            label="car",
            condition="#s = :a AND version = :v",
            names={"#s": "state"},
            values={
                ":r": CarState.RESERVED.value,
                ":a": CarState.AVAILABLE.value,
                ":ride": ride_id,
                ":v": car.version,
                ":one": 1,
            },
        )

    def change(self, car: Car, state: CarState, ride_id: str | None) -> None:
        values: dict[str, Any] = {":s": state.value, ":v": car.version, ":one": 1}
        if ride_id:
            expression = "SET #s = :s, rideId = :ride, version = version + :one"
            values[":ride"] = ride_id
        else:
            expression = "SET #s = :s, version = version + :one REMOVE rideId"
        self._base.tx.update(
            CARS,
            {"carId": car.car_id},
            expression,
            label="car",
            condition="version = :v",
            names={"#s": "state"},
            values=values,
        )


class DynamoAssignments:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, ride_id: str) -> Assignment | None:
        item = dynamo.get(self._base.dynamodb, ASSIGNMENTS, {"rideId": ride_id})
        if item is None:
            return None
        return Assignment(
            ride_id=ride_id,
            status=AssignmentStatus(item["status"]),
            car_id=item.get("carId"),
            pickup=Place.model_validate_json(item["pickup"]) if item.get("pickup") else None,
            dropoff=Place.model_validate_json(item["dropoff"]) if item.get("dropoff") else None,
            trip_started=bool(item.get("tripStarted", False)),
            version=int(item.get("version", 0)),
            # a row written before CarAssigned was sequenced had given the ride at most its first car
            cars_assigned=int(item.get("carsAssigned", 1 if item.get("carId") else 0)),
            ride_sequence=int(item.get("rideSequence", 0)),
        )

    def _item(self, row: Assignment) -> dict[str, Any]:
        return {
            "rideId": row.ride_id,
            "status": row.status.value,
            "carId": row.car_id,
            "pickup": row.pickup.model_dump_json() if row.pickup else None,
            "dropoff": row.dropoff.model_dump_json() if row.dropoff else None,
            "tripStarted": row.trip_started,
            "version": row.version,
            "carsAssigned": row.cars_assigned,
            "rideSequence": row.ride_sequence,
        }

    def add(self, assignment: Assignment) -> None:
        self._base.tx.put(
            ASSIGNMENTS, self._item(assignment), label="assignment", condition="attribute_not_exists(rideId)"
        )

    def save(self, assignment: Assignment, expected_version: int) -> None:
        self._base.tx.put(
            ASSIGNMENTS,
            self._item(assignment),
            label="assignment",
            condition="version = :v",
            values={":v": expected_version},
        )


class DynamoFleetUnitOfWork(ServiceUnitOfWork):
    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.cars = DynamoCars(base)
        self.assignments = DynamoAssignments(base)


class DynamoPositions:
    """Telemetry positions onto the cars table (facts of the stream, not of a transaction) and the
    stream's checkpoints."""

    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self._dynamodb = dynamodb

    def save_positions(self, positions: dict[str, Position]) -> None:
        for car_id, (lat, lon) in positions.items():
            self._dynamodb.update_item(
                TableName=CARS,
                Key=dynamo.to_item({"carId": car_id}),
                UpdateExpression="SET lat = :a, lon = :o",
                ConditionExpression="attribute_exists(carId)",
                ExpressionAttributeValues=dynamo.to_item({":a": lat, ":o": lon}),
            )

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        save_checkpoint(self._dynamodb, checkpoint)


def all_cars(dynamodb: DynamoDBClient) -> list[Car]:
    """Every car in the table, by id."""
    return sorted((_car(i) for i in _scan(dynamodb)), key=lambda c: c.car_id)


def seed_cars(dynamodb: DynamoDBClient, unit_of_work: Callable[[], UnitOfWork], fleet: list[FleetCar]) -> int:
    """Add every car of the seeded fleet that the table does not have yet, each with its event for the fleet
    view; returns how many were added."""
    known = {car.car_id for car in all_cars(dynamodb)}
    missing = [Car(c.car_id, CarState.AVAILABLE, c.lat, c.lon) for c in fleet if c.car_id not in known]
    return add_cars(unit_of_work, missing)


# --- the live fleet view read model -------------------------------------------------------------------
FLEET_PARTITION = "cars"
"""Every row of the fleet view is in this one partition, by car id: the answer is one paged Query."""


class DynamoFleetViewRows:
    """Writes to the copies of the fleet view an event goes to: the one read and, during a rebuild, the
    fresh one (``acr.projections``); the rebuild queue's consumer writes to the fresh one only."""

    def __init__(self, base: DynamoUnitOfWork, copies: tuple[str, ...]) -> None:
        self._base = base
        self._copies = copies

    def put_if_newer(self, car: FleetCarUpdated, sequence: int) -> None:
        """No row counts as version -1, so that a seeded car's first state (version 0) applies."""
        key = {"fleet": FLEET_PARTITION, "carId": car.car_id}
        row = {"state": car.state, "rideId": car.ride_id, "lat": car.lat, "lon": car.lon}
        put_newer(self._base, self._copies, key, row, sequence, label="fleet", absent=-1)


class DynamoFleetViewUnitOfWork(ServiceUnitOfWork):
    """The fleet view projector's unit of work (without markers: its write is idempotent by version)."""

    def __init__(self, base: DynamoUnitOfWork, copies: tuple[str, ...]) -> None:
        super().__init__(base)
        self.fleet_view = DynamoFleetViewRows(base, copies)


class DynamoFleetReadModel:
    """The fleet view as readers see it: the copy the projection's pointer names."""

    def __init__(self, dynamodb: DynamoDBClient, projection: Projection) -> None:
        self._dynamodb = dynamodb
        self._projection = projection

    def cars(self) -> list[Car]:
        return self._projection.read(self._cars_in)

    def _cars_in(self, generation: int) -> list[Car]:
        """The one partition, page by page: what it costs grows with the fleet, never with its history."""
        kwargs: dict[str, Any] = {
            "TableName": copy_name(FLEET, generation),
            "KeyConditionExpression": "fleet = :f",
            "ExpressionAttributeValues": dynamo.to_item({":f": FLEET_PARTITION}),
            "ConsistentRead": True,
        }
        cars: list[Car] = []
        while True:
            page = on_copy(self._dynamodb.query, **kwargs)
            cars += [_car(dynamo.from_item(item)) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return cars
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
