"""The AWS side of ``acr.projections``: the pointer rows in DynamoDB, the copies as DynamoDB tables, the
replay of a bus's EventBridge archive, the rebuild queue's depth in SQS."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.catalog.base import bus_name
from acr.consumer import Stale
from acr.dynamo import DynamoUnitOfWork, from_item, is_conditional_failure, to_item
from acr.ordering import Order, order
from acr.projections import CopyMissing, Pointer, Projection, ProjectionState, Rebuild, copy_name
from acr.topology.model import Table
from acr.topology.plan import plan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

    from acr.runtime import Messaging

TABLE_WAIT_S = 60.0


def missing_copy(exc: ClientError) -> bool:
    """Did a call fail because its table does not exist (a copy dropped after a switch)?"""
    return exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class DynamoPointers:
    """One item per projection (key ``name``) in the service's projections table."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def read(self, name: str) -> Pointer | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key=to_item({"name": name}), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        row = from_item(item)
        last = row.get("lastRebuild")
        return Pointer(
            name=name,
            generation=int(row["generation"]),
            state=ProjectionState(row["state"]),
            building=int(row["building"]) if row.get("building") is not None else None,
            owner=row.get("owner"),
            heartbeat_at=float(row.get("heartbeatAt", 0)),
            last_rebuild=json.loads(last) if last else None,
            revision=int(row["revision"]),
        )

    def write(self, pointer: Pointer, expected: Pointer | None) -> Pointer | None:
        stored = replace(pointer, revision=(expected.revision if expected else 0) + 1)
        item = {
            "name": stored.name,
            "generation": stored.generation,
            "state": stored.state.value,
            "building": stored.building,
            "owner": stored.owner,
            "heartbeatAt": stored.heartbeat_at,
            "lastRebuild": json.dumps(stored.last_rebuild) if stored.last_rebuild else None,
            "revision": stored.revision,
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(#n)", "ExpressionAttributeNames": {"#n": "name"}}
            if expected is None
            else {
                "ConditionExpression": "revision = :r",
                "ExpressionAttributeValues": to_item({":r": expected.revision}),
            }
        )
        try:
            self._dynamodb.put_item(TableName=self._table, Item=to_item(item), **condition)
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return stored


class DynamoCopies:
    """A projection's copies: tables with the declared table's keys and indexes, named by generation."""

    def __init__(self, dynamodb: DynamoDBClient, declared: Table) -> None:
        self._dynamodb = dynamodb
        self._declared = declared

    def name(self, generation: int) -> str:
        return copy_name(self._declared.name, generation)

    def create(self, generation: int) -> None:
        name = self.name(generation)
        self.drop(generation)
        self._dynamodb.create_table(**(self._declared.definition() | {"TableName": name}))
        self._dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": int(TABLE_WAIT_S)}
        )

    def drop(self, generation: int) -> None:
        name = self.name(generation)
        try:
            self._dynamodb.delete_table(TableName=name)
        except ClientError as exc:
            if missing_copy(exc):
                return
            raise
        self._dynamodb.get_waiter("table_not_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": int(TABLE_WAIT_S)}
        )


class EventBridgeArchive:
    """Replays of one bus's archive to the one rule that feeds the rebuild queue (``FilterArns``; the live
    rules exclude replayed events anyway, for emulators that ignore the filter)."""

    def __init__(self, events: EventBridgeClient, archive: str, bus: str, rule: str) -> None:
        self._events = events
        self._archive = archive
        self._bus = bus
        self._rule = rule

    def replay(self, replay_name: str, until: datetime) -> None:
        archive = self._events.describe_archive(ArchiveName=self._archive)
        bus_arn = self._events.describe_event_bus(Name=self._bus)["Arn"]
        rule_arn = self._events.describe_rule(Name=self._rule, EventBusName=self._bus)["Arn"]
        self._events.start_replay(
            ReplayName=replay_name,
            EventSourceArn=archive["ArchiveArn"],
            EventStartTime=archive["CreationTime"],
            EventEndTime=until,
            Destination={"Arn": bus_arn, "FilterArns": [rule_arn]},
        )

    def replay_state(self, replay_name: str) -> str:
        return str(self._events.describe_replay(ReplayName=replay_name)["State"])


class SqsRebuildQueue:
    def __init__(self, sqs: SQSClient, url: str) -> None:
        self._sqs = sqs
        self._url = url

    def pending(self) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(n) for n in attributes.values())


def on_copy(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call`` on a copy; ``CopyMissing`` when that copy was dropped (the reader reads the pointer again)."""
    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        if missing_copy(exc):
            raise CopyMissing(str(exc)) from exc
        raise


def copies_written(projection: Projection, table: str, *, rebuilding: bool = False) -> tuple[str, ...]:
    """The copies of ``projection`` (declared as ``table``) a consumer writes now: the live consumer every
    copy its pointer names (the one read and, during a rebuild, the fresh one); the rebuild queue's
    consumer only the copy being built, none while no rebuild runs."""
    if not rebuilding:
        return tuple(copy_name(table, g) for g in projection.pointer().written)
    building = projection.building()
    return () if building is None else (copy_name(table, building),)


def put_newer(
    base: DynamoUnitOfWork,
    copies: tuple[str, ...],
    key: dict[str, Any],
    row: dict[str, Any],
    sequence: int,
    *,
    label: str,
    absent: int = 0,
) -> None:
    """Stage ``key | row`` at version ``sequence`` in each of ``copies`` whose stored row is older (no row:
    version ``absent``), each put conditional on that, so a row written meanwhile fails the commit and the
    kernel runs the handler again. ``Stale`` when no copy is older: a duplicate or an out-of-order event.
    The ordering is ``acr.ordering``'s, with gaps allowed: each event carries its aggregate's whole state."""
    newer = [
        copy
        for copy in copies
        if order(_stored_version(base, copy, key, absent), sequence, gapless=False) is Order.APPLY
    ]
    if copies and not newer:
        raise Stale(f"{label} {key} #{sequence} is not newer than the read model")
    for copy in newer:
        base.tx.put(
            copy,
            key | row | {"version": sequence},
            label=label,
            condition="attribute_not_exists(version) OR version < :v",
            values={":v": sequence},
        )


def _stored_version(base: DynamoUnitOfWork, copy: str, key: dict[str, Any], absent: int) -> int:
    stored = base.dynamodb.get_item(
        TableName=copy, Key=to_item(key), ConsistentRead=True, ProjectionExpression="version"
    ).get("Item")
    return int(from_item(stored)["version"]) if stored else absent


def archive_rebuild(
    messaging: Messaging, projection: Projection, table: str, rebuild_queue: str, pointers_table: str
) -> Callable[[], Rebuild]:
    """How the service rebuilds ``projection`` (rows in its declared ``table``, pointer in
    ``pointers_table``): a replay of its own bus's archive to the rule of its ``replayed`` subscription
    ``rebuild_queue``, caught up once that queue is drained."""
    topology = messaging.topology
    slice_plan = plan([topology])[0]
    declared = next(t for t in topology.tables if t.name == table)
    route = next(r for r in slice_plan.routes if r.queue == topology.queue(rebuild_queue))
    if slice_plan.archive is None or topology.context is None:
        raise ValueError(f"{topology.service} publishes on no bus: it has no archive to rebuild from")
    archive = EventBridgeArchive(
        messaging.events, slice_plan.archive.name, bus_name(topology.context), route.rule
    )
    queue = SqsRebuildQueue(messaging.sqs, messaging.queue_url(topology.queue(rebuild_queue)))
    pointers = DynamoPointers(messaging.dynamodb, pointers_table)
    return lambda: Rebuild(
        projection,
        pointers,
        DynamoCopies(messaging.dynamodb, declared),
        archive,
        queue,
        owner=messaging.settings.replica,
    )
