"""DynamoDB adapters of the fleet context."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from acr import dynamo
from acr.envelope import CloudEvent
from acr.fleet import FleetCar
from acr.unit_of_work import DynamoUnitOfWork, Outgoing
from car_dispatcher.domain import Car, CarState
from car_dispatcher.topology import ASSIGNMENTS, CARS


def _car(item: dict[str, Any]) -> Car:
    return Car(item["carId"], CarState(item["state"]), float(item["lat"]), float(item["lon"]), item.get("rideId"),
               int(item.get("version", 0)))


def _scan(dynamodb: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(TableName=CARS, ConsistentRead=True, **kwargs)
        items += [dynamo.from_item(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoCars:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, car_id: str) -> Car | None:
        item = dynamo.get(self._base.dynamodb, CARS, {"carId": car_id})
        return _car(item) if item else None

    def available(self) -> list[Car]:
        items = _scan(self._base.dynamodb, FilterExpression="#s = :a", ExpressionAttributeNames={"#s": "state"},
                      ExpressionAttributeValues=dynamo.to_item({":a": CarState.AVAILABLE.value}))
        return [_car(i) for i in items]

    def all(self) -> list[Car]:
        return sorted((_car(i) for i in _scan(self._base.dynamodb)), key=lambda c: c.car_id)

    def reserve(self, car: Car, ride_id: str) -> None:
        """Only an AVAILABLE car can be reserved: two rides never get one car."""
        self._base.tx.update(CARS, {"carId": car.car_id}, "SET #s = :r, rideId = :ride, version = version + :one",
                             label="car", condition="#s = :a", names={"#s": "state"},
                             values={":r": CarState.RESERVED.value, ":a": CarState.AVAILABLE.value,
                                     ":ride": ride_id, ":one": 1})

    def release(self, car: Car) -> None:
        self._base.tx.update(CARS, {"carId": car.car_id}, "SET #s = :a, version = version + :one REMOVE rideId",
                             label="car", condition="version = :v", names={"#s": "state"},
                             values={":a": CarState.AVAILABLE.value, ":v": car.version, ":one": 1})


class DynamoAssignments:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, ride_id: str) -> str | None:
        item = dynamo.get(self._base.dynamodb, ASSIGNMENTS, {"rideId": ride_id})
        return item.get("carId") if item else None

    def add(self, ride_id: str, car_id: str | None) -> None:
        self._base.tx.put(ASSIGNMENTS, {"rideId": ride_id, "carId": car_id}, label="assignment",
                          condition="attribute_not_exists(rideId)")


class DynamoFleetUnitOfWork:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base
        self.cars = DynamoCars(base)
        self.assignments = DynamoAssignments(base)

    def record(self, outgoing: Outgoing) -> None:
        self._base.record(outgoing)

    def mark_consumed(self, event: CloudEvent) -> None:
        self._base.mark_consumed(event)

    def commit(self) -> None:
        self._base.commit()


def seed_cars(dynamodb: Any, fleet: list[FleetCar]) -> int:
    """Put every car of the seeded fleet that the table does not have yet; returns how many were added."""
    added = 0
    for car in fleet:
        try:
            dynamodb.put_item(
                TableName=CARS,
                Item=dynamo.to_item({"carId": car.car_id, "state": CarState.AVAILABLE.value, "lat": car.lat,
                                     "lon": car.lon, "version": 0}),
                ConditionExpression="attribute_not_exists(carId)",
            )
            added += 1
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
    return added
