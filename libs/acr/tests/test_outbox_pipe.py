"""The exported Pipe publishes what the polling relay would: same CloudEvent id, source, detail-type, detail.

Rows are written through the kernel (``DynamoUnitOfWork`` with the ``pipes`` relay) into the outbox table as
the ride stack declares it (its stream of new images included), on in-process moto. The stream's records
are read back and put through the stack's Pipe by a small interpreter of exactly what the Pipe uses: its
filter (nested objects, lists of exact strings), its input template (``<$.path>`` placeholders) and its
target parameters (a whole value that is a ``$.path``); any other construct fails the test, so a change to
the Pipe must be interpreted here first. The same events, written as polling rows, go through the polling
relay and ``EventBridgeChannel``; both sets of ``PutEvents`` entries must be equal.

The interpreter follows the Pipes documentation ("input transformation", "target parameters"): a string
found at a placeholder's path is put in as its text (quotes are the template's to write), an object or
array as its JSON; the EventBridge target puts the transformed payload as the event's detail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from acr_exactly_once_fakes import ScriptedChannel, Sqs
from moto import mock_aws

from acr.catalog.base import Place
from acr.catalog.ride import RideCancelled, RideRequested, RideUpdated
from acr.channels import EventBridgeChannel
from acr.dynamo import DynamoUnitOfWork
from acr.metrics import Counters
from acr.money import Money
from acr.relay import Relay
from acr.topology import discover
from acr.topology.cloudformation import templates
from acr.topology.export import MAX_RECEIVES
from acr.topology.plan import plan
from acr.unit_of_work import outbox_row
from acr_testkit.aws import REGION, client

PLACEHOLDER = re.compile(r"<([^<>]*)>")
PATH = re.compile(r"\$(\.[A-Za-z0-9_-]+)+")
INTERPRETED_TARGET_PARAMETERS = {"DetailType", "Source"}


# --- the interpreter --------------------------------------------------------------------------------------
def _at(document: Any, path: str) -> Any:
    """The value at a dot-notation JSON path (the only notation the Pipe uses)."""
    assert PATH.fullmatch(path), f"JSON path not interpreted: {path}"
    for key in path.split(".")[1:]:
        document = document[key]
    return document


def _matches(pattern: Any, value: Any) -> bool:
    """EventBridge pattern matching for nested objects and lists of exact strings."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _matches(p, value[k]) for k, p in pattern.items()
        )
    assert isinstance(pattern, list) and all(isinstance(v, str) for v in pattern), (
        f"not interpreted: {pattern}"
    )
    return value in pattern


def _transform(template: str, record: dict[str, Any]) -> str:
    """The input template with each ``<$.path>`` replaced; a reserved variable (``<aws.pipes...>``) fails."""

    def value(match: re.Match[str]) -> str:
        found = _at(record, match.group(1))
        return found if isinstance(found, str) else json.dumps(found)

    return PLACEHOLDER.sub(value, template)


def _parameter(value: str, record: dict[str, Any]) -> str:
    """A target parameter: static, or (the whole value a JSON path) the string found there."""
    if not value.startswith("$"):
        return value
    found = _at(record, value)
    assert isinstance(found, str)
    return found


def _put_by_pipe(stack: dict[str, Any], logical: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``PutEvents`` entries the Pipe ``logical`` of ``stack`` makes of the stream ``records``."""
    pipe = stack["Resources"][logical]["Properties"]
    filters = pipe["SourceParameters"]["FilterCriteria"]["Filters"]
    kept = [r for r in records if any(_matches(json.loads(f["Pattern"]), r) for f in filters)]
    assert set(pipe["TargetParameters"]) == {"EventBridgeEventBusParameters", "InputTemplate"}
    parameters = pipe["TargetParameters"]["EventBridgeEventBusParameters"]
    assert set(parameters) <= INTERPRETED_TARGET_PARAMETERS, f"not interpreted: {set(parameters)}"
    bus, attribute = pipe["Target"]["Fn::GetAtt"]
    assert attribute == "Arn" and stack["Resources"][bus]["Type"] == "AWS::Events::EventBus"
    entries = []
    for record in kept:
        entry = {"EventBusName": stack["Resources"][bus]["Properties"]["Name"], "Resources": []}
        entry |= {name: _parameter(value, record) for name, value in parameters.items()}
        entry["Detail"] = _transform(pipe["TargetParameters"]["InputTemplate"], record)
        assert isinstance(json.loads(entry["Detail"]), dict)  # PutEvents takes a JSON object as detail
        entries.append(entry)
    return entries


# --- the outbox on in-process moto --------------------------------------------------------------------------
class RecordingEvents:
    """An EventBridge client that accepts every entry and keeps it."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.entries += Entries
        return {"Entries": [{"EventId": f"e{i}"} for i in range(len(Entries))], "FailedEntryCount": 0}


@pytest.fixture(scope="module")
def ride_stack() -> dict[str, Any]:
    return templates(plan(discover(), MAX_RECEIVES))["ride"]


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


def _create_outbox(stack: dict[str, Any], name: str | None = None) -> str:
    """The ride-manager outbox as the stack declares it (keys, index, stream); its stream ARN."""
    table = stack["Resources"]["TableRideManagerOutbox"]["Properties"]
    keys = ("TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")
    definition = {key: table[key] for key in keys} | {"TableName": name or table["TableName"]}
    stream = {"StreamEnabled": True, **table["StreamSpecification"]}
    created = client("dynamodb").create_table(**definition, StreamSpecification=stream)
    return str(created["TableDescription"].get("LatestStreamArn", ""))


def _stream_records(stream_arn: str) -> list[dict[str, Any]]:
    """Every record of the stream, oldest first, as the Pipe receives them. Recent botocore addresses DynamoDB
    Streams at an account endpoint that moto 5.2 does not route, so the client names the regional one (the
    same API). moto records transactional writes in the stream, so nothing is built from the table."""
    streams = boto3.client(
        "dynamodbstreams",
        region_name=REGION,
        endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            records += page["Records"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def _put_by_relay(table: str) -> tuple[list[dict[str, Any]], ScriptedChannel]:
    """The ``PutEvents`` entries the polling relay makes of ``table``'s pending rows; its topic channel."""
    events, topic = RecordingEvents(), ScriptedChannel()
    relay = Relay(
        dynamodb=client("dynamodb"),
        sqs=Sqs(),  # nothing is dead-lettered here
        outbox_table=table,
        dead_letter_queue_url="https://sqs/acr-ride-manager-producer-dlq",
        channels={"bus": EventBridgeChannel(events), "topic": topic},
        counters=Counters(),
    )
    while relay.drain_once():
        pass
    return events.entries, topic


def _place() -> Place:
    return Place(label="1 Main Street", lat=60.17, lon=24.94)


def _ride_requested(ride_id: str) -> RideRequested:
    return RideRequested(
        ride_id=ride_id,
        rider_id="rdr_1",
        pickup=_place(),
        dropoff=_place(),
        quoted_fare=Money.of("9.90"),
        quoted_distance_meters=1000,
        quoted_duration_seconds=120,
        requested_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Entries by their CloudEvent id, the detail read as JSON (the same object, however it is spaced)."""
    return {json.loads(e["Detail"])["id"]: e | {"Detail": json.loads(e["Detail"])} for e in entries}


# --- the test ---------------------------------------------------------------------------------------------
def test_the_pipe_puts_on_the_bus_what_the_polling_relay_would_and_leaves_the_rest(
    ride_stack: dict[str, Any], moto: None
) -> None:
    outbox = ride_stack["Resources"]["TableRideManagerOutbox"]["Properties"]["TableName"]
    stream_arn = _create_outbox(ride_stack)
    before = DynamoUnitOfWork(client("dynamodb"), outbox)  # polling: a row left pending by the switch
    before.record(_ride_requested("ride_0"), subject="ride_0", sequence=1)
    before.commit()
    uow = DynamoUnitOfWork(client("dynamodb"), outbox, outbox_relay="pipes")
    for n in (1, 2):
        uow.record(_ride_requested(f"ride_{n}"), subject=f"ride_{n}", sequence=1)
    uow.record(
        RideCancelled(
            ride_id="ride_2",
            rider_id="rdr_1",
            car_id=None,
            reason="RIDER_CANCELLED",
            cancelled_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        subject="ride_2",
        sequence=2,
    )
    uow.record(
        RideUpdated(ride_id="ride_1", rider_id="rdr_1", version=1, ride={"v": 1}),
        subject="ride_1",
        sequence=1,
    )
    uow.commit()
    piped = [o for o in uow.recorded if o.destination.kind == "bus"]
    assert len(piped) == 3

    # The relay on the same outbox: the row left pending and the topic row, each then marked SENT.
    relayed, topic = _put_by_relay(outbox)
    assert [json.loads(e["Detail"])["id"] for e in relayed] == [before.recorded[0].event.id]
    assert topic.sent_ids() == [uow.recorded[-1].event.id]

    records = _stream_records(stream_arn)
    assert [r["eventName"] for r in records].count("MODIFY") == 4  # each relayed row: its claim, its SENT
    by_pipe = _by_id(_put_by_pipe(ride_stack, "RideManagerOutboxPipe", records))
    assert set(by_pipe) == {o.event.id for o in piped}  # not the topic row, the relay's row, nor a MODIFY

    # The same events as polling rows, through the polling relay: the Pipe's entries are equal to its own.
    _create_outbox(ride_stack, "acr-ride-manager-outbox-polled")
    polled = DynamoUnitOfWork(client("dynamodb"), "acr-ride-manager-outbox-polled")
    for outgoing in piped:
        polled.tx.put("acr-ride-manager-outbox-polled", outbox_row(outgoing, 1.0), label="outbox")
    polled.commit()
    by_relay = _by_id(_put_by_relay("acr-ride-manager-outbox-polled")[0])
    assert by_pipe == by_relay
    for outgoing in piped:
        entry = by_pipe[outgoing.event.id]
        assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
            "acr.ride-manager",
            outgoing.event.type,
            "acr-ride",
        )
        assert entry["Detail"] == json.loads(outgoing.event.to_json())
