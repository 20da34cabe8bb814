"""DynamoDB adapters of the monitoring context: tracking rows and car cursors with optimistic versions,
committed with the outbox rows and the stream checkpoint in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from acr import dynamo, tracing
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from acr.kinesis import stage_checkpoint
from acr.stream import Checkpoint
from route_monitor.adapters.rows import Item, car_from_item, car_item, ride_from_item, ride_item
from route_monitor.domain import CarCursor, RideTracking
from route_monitor.topology import CARS, TRACKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import KeysAndAttributesUnionTypeDef

BATCH_GET_KEYS = 100


def batch_get(dynamodb: DynamoDBClient, table: str, key: str, values: Iterable[str]) -> list[Item]:
    """Strongly consistent reads of many items (BatchGetItem, 100 keys a call, unprocessed keys retried)."""
    wanted = sorted(set(values))
    items: list[Item] = []
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        request: Mapping[str, KeysAndAttributesUnionTypeDef] = {
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


def _resumed_car(item: Item) -> CarCursor:
    """A car's cursor; the facts settled from it alone (a car gone quiet) continue its ride's trace, which
    its row keeps (``acr.tracing.stored_context``)."""
    car = car_from_item(item)
    tracing.resume_stored(car.ride_id, item)
    return car


class DynamoTrackingUnitOfWork(ServiceUnitOfWork):
    """Rows are written at their read ``version`` + 1 (a row read at another version fails the commit
    with label ``car`` or ``ride``); the checkpoint is one more item of the same transaction."""

    def _put_versioned(self, table: str, key: str, row: Item, version: int, label: str) -> None:
        condition, values = _versioned(key, version)
        item = row | {"version": version + 1}
        self._base.tx.put(table, item, label=label, condition=condition, values=values)

    def save_car(self, car: CarCursor) -> None:
        row = car_item(car) | tracing.stored_context(car.ride_id)
        self._put_versioned(CARS, "carId", row, car.version, "car")

    def save_ride(self, ride: RideTracking) -> None:
        row = ride_item(ride) | tracing.stored_context(ride.ride_id)
        self._put_versioned(TRACKING, "rideId", row, ride.version, "ride")

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        stage_checkpoint(self._base.tx, checkpoint)


class DynamoTrackingStore:
    def __init__(self, dynamodb: DynamoDBClient, unit_of_work: Callable[[], DynamoUnitOfWork]) -> None:
        self._dynamodb = dynamodb
        self._unit_of_work = unit_of_work

    def cars(self, car_ids: Iterable[str]) -> dict[str, CarCursor]:
        items = batch_get(self._dynamodb, CARS, "carId", car_ids)
        return {i["carId"]: _resumed_car(i) for i in items}

    def carrying(self) -> list[CarCursor]:
        kwargs: dict[str, Any] = {
            "TableName": CARS,
            "ConsistentRead": True,
            "FilterExpression": "attribute_exists(rideId)",
        }
        cursors: list[CarCursor] = []
        while True:
            page = self._dynamodb.scan(**kwargs)
            cursors += [_resumed_car(dynamo.from_item(i)) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return cursors
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def rides(self, ride_ids: Iterable[str]) -> dict[str, RideTracking]:
        items = batch_get(self._dynamodb, TRACKING, "rideId", ride_ids)
        for item in items:
            tracing.resume_stored(item["rideId"], item)
        return {i["rideId"]: ride_from_item(i) for i in items}

    def unit_of_work(self) -> DynamoTrackingUnitOfWork:
        return DynamoTrackingUnitOfWork(self._unit_of_work())
