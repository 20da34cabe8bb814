"""AWS on in-process moto (``mock_aws``): the whole topology, for contract tests that run a port's fake and
its DynamoDB adapter through the same cases, or only some tables, for tests of the kernel's own writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from moto import mock_aws

from acr import dynamo
from acr.catalog import CATALOG
from acr.catalog.base import Destination
from acr.envelope import CloudEvent
from acr.loops import Loops
from acr.runtime import Messaging
from acr.settings import Settings
from acr.topology import ServiceTopology, Table, discover
from acr.topology.apply import Clients, apply, create_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"


@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["sns"]) -> SNSClient: ...
@overload
def client(service: Literal["events"]) -> EventBridgeClient: ...
@overload
def client(service: Literal["kinesis"]) -> KinesisClient: ...
@overload
def client(service: str) -> Any: ...
def client(service: str) -> Any:
    """A client of ``service`` with dummy credentials (inside ``mock_aws``, moto answers it)."""
    return boto3.session.Session().client(  # type: ignore[call-overload]  # the name is known at run time only
        service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@contextmanager
def in_process_messaging(topology: ServiceTopology, settings: Settings | None = None) -> Iterator[Messaging]:
    """``topology``'s messaging on in-process moto, with every slice applied; nothing runs in the
    background (the loops are never started)."""
    with mock_aws():
        apply(discover(), Clients(client))
        yield Messaging(topology, settings or Settings(aws_endpoint_url=""), Loops(), make_client=client)


@contextmanager
def in_process_tables(tables: list[Table]) -> Iterator[DynamoDBClient]:
    """A DynamoDB client on in-process moto where ``tables`` exist (created as the topology creates them:
    same keys, indexes and TTL attribute)."""
    with mock_aws():
        dynamodb = client("dynamodb")
        for table in tables:
            create_table(dynamodb, table)
        yield dynamodb


def _outbox(messaging: Messaging) -> list[dict[str, Any]]:
    table = messaging.topology.outbox_table
    return [dynamo.from_item(i) for i in messaging.dynamodb.scan(TableName=table)["Items"]]


def archive_copies(messaging: Messaging) -> list[tuple[str, str]]:
    """(event name, destination) of the outbox rows that copy an archived type to its context's bus."""
    return [
        (CATALOG[row["type"]].name, row["destination"])
        for row in _outbox(messaging)
        if Destination.parse(row["destination"]) != CATALOG[row["type"]].destination
    ]


def outbox_events(messaging: Messaging) -> list[CloudEvent]:
    """The events in the service's outbox, oldest first (an archived type's copy for its bus left out:
    ``archive_copies`` lists those)."""
    rows = [
        row
        for row in _outbox(messaging)
        if Destination.parse(row["destination"]) == CATALOG[row["type"]].destination
    ]
    return sorted(
        (CloudEvent.from_json(row["event"]) for row in rows), key=lambda e: (e.time, e.sequence or 0)
    )


def published(messaging: Messaging) -> list[str]:
    """The event names in the service's outbox, oldest first (``outbox_events``)."""
    return [CATALOG[e.type].name for e in outbox_events(messaging)]


def empty_tables(dynamodb: DynamoDBClient, tables: list[Table]) -> None:
    """Delete every item of ``tables`` (in-process moto: between the cases of a module that shares it)."""
    for table in tables:
        names = [name for name in (table.partition_key, table.sort_key) if name]
        for item in dynamodb.scan(TableName=table.name)["Items"]:
            dynamodb.delete_item(TableName=table.name, Key={n: item[n] for n in names})
