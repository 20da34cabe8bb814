"""DynamoDB adapters of the monitoring context: tracking rows and car cursors with optimistic versions,
committed with the outbox rows and the stream checkpoint in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from acr import dynamo
from acr.stream import Checkpoint
from acr.unit_of_work import DynamoUnitOfWork, ServiceUnitOfWork
from route_monitor.domain import CarCursor, RideTracking
from route_monitor.topology import CARS, TRACKING

BATCH_GET_KEYS = 100


def batch_get(dynamodb: Any, table: str, key: str, values: Iterable[str]) -> list[dict[str, Any]]:
    """Strongly consistent reads of many items (BatchGetItem, 100 keys a call, unprocessed keys retried)."""
    wanted = sorted(set(values))
    items: list[dict[str, Any]] = []
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        request: dict[str, Any] = {
            table: {
                "Keys": [dynamo.to_item({key: v}) for v in wanted[start : start + BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
        }
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            items += [dynamo.from_item(i) for i in response.get("Responses", {}).get(table, [])]
            request = response.get("UnprocessedKeys") or {}
    return items


def _versioned(key: str, version: int) -> tuple[str, dict[str, Any] | None]:
    """The condition that the row is still the one that was read."""
    if version == 0:
        return f"attribute_not_exists({key})", None
    return "version = :v", {":v": version}


class DynamoTrackingUnitOfWork(ServiceUnitOfWork):
    def _put_versioned(self, table: str, key: str, row: dict[str, Any], version: int, label: str) -> None:
        condition, values = _versioned(key, version)
        item = row | {"version": version + 1}
        self._base.tx.put(table, item, label=label, condition=condition, values=values)

    def save_car(self, car: CarCursor) -> None:
        self._put_versioned(CARS, "carId", car.to_dict(), car.version, "car")

    def save_ride(self, ride: RideTracking) -> None:
        self._put_versioned(TRACKING, "rideId", ride.to_dict(), ride.version, "ride")

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        checkpoint.add_to(self._base.tx)


class DynamoTrackingStore:
    def __init__(self, dynamodb: Any, unit_of_work: Callable[[], DynamoUnitOfWork]) -> None:
        self._dynamodb = dynamodb
        self._unit_of_work = unit_of_work

    def cars(self, car_ids: Iterable[str]) -> dict[str, CarCursor]:
        return {i["carId"]: CarCursor.from_dict(i) for i in batch_get(self._dynamodb, CARS, "carId", car_ids)}

    def rides(self, ride_ids: Iterable[str]) -> dict[str, RideTracking]:
        items = batch_get(self._dynamodb, TRACKING, "rideId", ride_ids)
        return {i["rideId"]: RideTracking.from_dict(i) for i in items}

    def unit_of_work(self) -> DynamoTrackingUnitOfWork:
        return DynamoTrackingUnitOfWork(self._unit_of_work())
