"""The cars table and the groups' mailboxes in DynamoDB.

A consumer appends a command to its group's mailbox row (``acr-car-simulator-commands``, one row per
group: ``group`` = ``cars#<n>``, ``commands`` = a list, oldest first) with ``list_append`` in the
transaction of the message's marker, so concurrent posts never lose one and keep their commit order. The
group's driver removes the first command (conditional on its id) in the transaction that stores the car's
row; every write of the driver is a transaction that checks its group lease's guard (owner and fencing
token, a ``ConditionCheck`` on the lease row), so a replica that lost the group commits nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from acr import dynamo, tracing
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork, Transaction, TransactionCancelled
from acr.leases import KEY, Lease, LeaseTable
from car_simulator.adapters.rows import (
    PROGRESS,
    car_item,
    command_from_item,
    command_item,
    progress_item,
    snapshot_from_item,
)
from car_simulator.domain import CarCommand, Snapshot
from car_simulator.ports import Fenced, GroupLease
from car_simulator.topology import CARS, COMMANDS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A car with no row is at version 0; a row is written only over the version it was read at.
AT_VERSION = "attribute_not_exists(carId) OR #version = :v"


class DynamoCarRows:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def save(self, snapshot: Snapshot) -> None:
        """The whole row: a command's change (a new ride, or none) keeps the trace context of the car's ride;
        progress saves leave it as it is."""
        self._base.tx.put(
            CARS,
            car_item(snapshot) | tracing.stored_context(snapshot.car.ride_id),
            label="car",
            condition=AT_VERSION,
            names={"#version": "version"},
            values={":v": snapshot.car.version - 1},
        )


def batch_get(dynamodb: DynamoDBClient, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items with these keys that exist (strongly consistent, 100 keys to a ``BatchGetItem``)."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        batch = [dynamo.to_item(key) for key in keys[start : start + 100]]
        request: dict[str, Any] = {table: {"Keys": batch, "ConsistentRead": True}}
        while request:
            page = dynamodb.batch_get_item(RequestItems=request)
            items += [dynamo.from_item(item) for item in page.get("Responses", {}).get(table, [])]
            request = dict(page.get("UnprocessedKeys") or {})
    return items


def _command(item: dict[str, Any]) -> CarCommand:
    """A command read from its mailbox; its ride's trace is continued by whichever replica applies it."""
    command = command_from_item(item)
    tracing.resume_stored(command.ride_id, item)
    return command


def _snapshot(item: dict[str, Any]) -> Snapshot:
    """A car read from its row; its telemetry continues its ride's trace in whichever replica drives it."""
    snapshot = snapshot_from_item(item)
    tracing.resume_stored(snapshot.car.ride_id, item)
    return snapshot


def fence(tx: Transaction, leases: LeaseTable, lease: GroupLease) -> None:
    """The transaction commits only while ``lease`` is held with its token (label ``lease``)."""
    guard = leases.guard(Lease(lease.key, lease.owner, lease.token, lease.expires_at))
    tx.check(
        leases.table,
        {KEY: lease.key},
        label="lease",
        condition=guard.condition,
        names=guard.names,
        values=guard.values,
    )


def post_command(tx: Transaction, command: CarCommand) -> None:
    tx.update(
        COMMANDS,
        {"group": command.group},
        "SET commands = list_append(if_not_exists(commands, :none), :command)",
        label="command",
        values={":none": [], ":command": [command_item(command) | tracing.stored_context(command.ride_id)]},
    )


class DynamoCommandRows:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def post(self, command: CarCommand) -> None:
        post_command(self._base.tx, command)

    def done(self, command: CarCommand) -> None:
        self._base.tx.update(
            COMMANDS,
            {"group": command.group},
            "REMOVE commands[0]",
            label="command",
            condition="commands[0].commandId = :id",
            values={":id": command.command_id},
        )


class DynamoCarUnitOfWork(ServiceUnitOfWork):
    """The message's marker and the commands it posts, or a command's removal, the car's row and the
    group lease's guard: one transaction."""

    def __init__(self, base: DynamoUnitOfWork, leases: LeaseTable) -> None:
        super().__init__(base)
        self.cars = DynamoCarRows(base)
        self.commands = DynamoCommandRows(base)
        self._leases = leases

    def fence(self, lease: GroupLease) -> None:
        fence(self._base.tx, self._leases, lease)


class DynamoMailbox:
    """The groups' mailboxes, read by their drivers and written by operators' calls."""

    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self._dynamodb = dynamodb

    def pending(self, groups: Iterable[str]) -> dict[str, list[CarCommand]]:
        rows = batch_get(self._dynamodb, COMMANDS, [{"group": group} for group in groups])
        return {row["group"]: [_command(c) for c in row["commands"]] for row in rows if row.get("commands")}

    def post(self, command: CarCommand) -> None:
        tx = Transaction()
        post_command(tx, command)
        dynamo.commit(self._dynamodb, tx)


def progress_update(snapshot: Snapshot) -> dict[str, Any]:
    """A progress save's update: ``PROGRESS`` set (or removed where None, the assignment with the ride),
    on the condition that the row is at the car's version (plain values: ``Transaction`` serializes)."""
    values = progress_item(snapshot)
    present = [name for name in PROGRESS if values[name] is not None]
    absent = [name for name in PROGRESS if values[name] is None]
    if snapshot.car.assignment is None:
        absent.append("assignment")
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in present)
    if absent:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in absent)
    return {
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {f"#{name}": name for name in present + absent} | {"#version": "version"},
        "ExpressionAttributeValues": {f":{name}": values[name] for name in present}
        | {":v": snapshot.car.version},
    }


class DynamoCarStore:
    def __init__(self, dynamodb: DynamoDBClient, leases: LeaseTable, table: str = CARS) -> None:
        self._dynamodb = dynamodb
        self._leases = leases
        self._table = table

    def load(self, car_ids: Iterable[str]) -> list[Snapshot]:
        items = batch_get(self._dynamodb, self._table, [{"carId": car_id} for car_id in car_ids])
        return sorted((_snapshot(i) for i in items), key=lambda s: s.car.car_id)

    def load_all(self) -> list[Snapshot]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._dynamodb.scan(**kwargs)
            items += [dynamo.from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return [_snapshot(i) for i in items]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save_progress(self, snapshot: Snapshot, lease: GroupLease) -> bool:
        update = progress_update(snapshot)
        tx = Transaction()
        tx.update(
            self._table,
            {"carId": snapshot.car.car_id},
            update["UpdateExpression"],
            label="car",
            condition=AT_VERSION,
            names=update["ExpressionAttributeNames"],
            values=update["ExpressionAttributeValues"],
        )
        fence(tx, self._leases, lease)
        try:
            dynamo.commit(self._dynamodb, tx)
        except TransactionCancelled as exc:
            if exc.failed("lease"):
                raise Fenced(f"group {lease.key} is no longer held with token {lease.token}") from exc
            if exc.failed("car"):
                return False
            raise
        return True
