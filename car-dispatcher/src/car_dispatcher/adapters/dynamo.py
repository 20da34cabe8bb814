"""DynamoDB adapters of the fleet context."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr import dynamo
from acr.catalog.base import Place
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from acr.fleet import FleetCar
from acr.kinesis import save_checkpoint
from acr.stream import Checkpoint
from car_dispatcher.domain import Assignment, AssignmentStatus, Car, CarState
from car_dispatcher.ports import Position
from car_dispatcher.topology import ASSIGNMENTS, CARS

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


def seed_cars(dynamodb: DynamoDBClient, fleet: list[FleetCar]) -> int:
    """Put every car of the seeded fleet that the table does not have yet; returns how many were added."""
    added = 0
    for car in fleet:
        try:
            dynamodb.put_item(
                TableName=CARS,
                Item=dynamo.to_item(
                    {
                        "carId": car.car_id,
                        "state": CarState.AVAILABLE.value,
                        "lat": car.lat,
                        "lon": car.lon,
                        "version": 0,
                    }
                ),
                ConditionExpression="attribute_not_exists(carId)",
            )
            added += 1
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
    return added
