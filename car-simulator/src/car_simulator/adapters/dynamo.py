"""The cars table in DynamoDB: a command's row in the transaction of the message's marker, progress
saves as conditional updates, and every row read back when the simulator starts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr import dynamo
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from car_simulator.adapters.rows import PROGRESS, car_item, progress_item, snapshot_from_item
from car_simulator.domain import Snapshot
from car_simulator.topology import CARS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A car with no row is at version 0; a row is written only over the version it was read at.
AT_VERSION = "attribute_not_exists(carId) OR #version = :v"


class DynamoCarRows:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def save(self, snapshot: Snapshot) -> None:
        self._base.tx.put(
            CARS,
            car_item(snapshot),
            label="car",
            condition=AT_VERSION,
            names={"#version": "version"},
            values={":v": snapshot.car.version - 1},
        )


class DynamoCarUnitOfWork(ServiceUnitOfWork):
    """The message's marker and the commanded car's row, in one transaction."""

    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.cars = DynamoCarRows(base)


def progress_update(snapshot: Snapshot) -> dict[str, Any]:
    """The ``UpdateItem`` arguments of a progress save: ``PROGRESS`` set (or removed where None, the
    assignment with the ride), on the condition that the row is at the car's version."""
    values = progress_item(snapshot)
    present = [name for name in PROGRESS if values[name] is not None]
    absent = [name for name in PROGRESS if values[name] is None]
    if snapshot.car.assignment is None:
        absent.append("assignment")
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in present)
    if absent:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in absent)
    return {
        "Key": dynamo.to_item({"carId": snapshot.car.car_id}),
        "UpdateExpression": expression,
        "ConditionExpression": AT_VERSION,
        "ExpressionAttributeNames": {f"#{name}": name for name in present + absent},
        "ExpressionAttributeValues": dynamo.to_item(
            {f":{name}": values[name] for name in present} | {":v": snapshot.car.version}
        ),
    }


class DynamoCarStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str = CARS) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def load(self) -> list[Snapshot]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._dynamodb.scan(**kwargs)
            items += [dynamo.from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return [snapshot_from_item(i) for i in items]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save_progress(self, snapshot: Snapshot) -> bool:
        try:
            self._dynamodb.update_item(TableName=self._table, **progress_update(snapshot))
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                return False
            raise
        return True
