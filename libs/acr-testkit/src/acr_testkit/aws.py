"""The whole topology on in-process moto (``mock_aws``), for contract tests that run a port's fake and
its DynamoDB adapter through the same cases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from acr import dynamo
from acr.catalog import CATALOG
from acr.envelope import CloudEvent
from acr.loops import Loops
from acr.runtime import Messaging
from acr.settings import Settings
from acr.topology import ServiceTopology, discover
from acr.topology.apply import Clients, apply

REGION = "us-east-1"


def client(service: str) -> Any:
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@contextmanager
def in_process_messaging(topology: ServiceTopology) -> Iterator[Messaging]:
    """``topology``'s messaging on in-process moto, with every slice applied; nothing runs in the
    background (the loops are never started)."""
    with mock_aws():
        apply(discover(), Clients(client))
        yield Messaging(topology, Settings(aws_endpoint_url=""), Loops(), make_client=client)


def published(messaging: Messaging) -> list[str]:
    """The event names in the service's outbox, oldest first."""
    rows = [
        dynamo.from_item(i)
        for i in messaging.dynamodb.scan(TableName=messaging.topology.outbox_table)["Items"]
    ]
    events = sorted(
        (CloudEvent.from_json(row["event"]) for row in rows), key=lambda e: (e.time, e.sequence or 0)
    )
    return [CATALOG[e.type].name for e in events]
