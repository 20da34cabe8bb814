"""The ``pipes`` outbox relay (``ACR_OUTBOX_RELAY=pipes``): the kernel writes bus rows for the outbox's Pipe
(never pending, expiring from their insert), and the polling relay keeps the topic rows, with its DLQ.

The Pipe itself, applied to the outbox stream, is tested in ``test_outbox_pipe.py``."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from acr_exactly_once_fakes import (
    OUTBOX,
    PRODUCER_DLQ,
    Clock,
    Dynamo,
    ScriptedChannel,
    Sqs,
    outbox_dynamodb,
    relay_clock,
)
from pydantic import ValidationError

from acr.catalog.fleet import NoCarAvailable
from acr.catalog.ride import RideUpdated
from acr.dynamo import DynamoUnitOfWork
from acr.metrics import Counters
from acr.outbox_metric import OutboxAgeMetric
from acr.relay import Relay
from acr.settings import Settings, settings_errors
from acr.topology import discover
from acr.unit_of_work import OutboxRelay
from acr_testkit.aws import in_process_messaging

clock, dynamodb = relay_clock, outbox_dynamodb  # the fixtures under the names the tests use
RETENTION_S = 120.0


def _unit_of_work(
    dynamodb: Dynamo, relay: OutboxRelay = "pipes", woken: list[int] | None = None
) -> DynamoUnitOfWork:
    wake = (lambda: woken.append(1)) if woken is not None else None
    return DynamoUnitOfWork(
        dynamodb, OUTBOX, on_commit=wake, outbox_relay=relay, sent_retention_s=RETENTION_S
    )


def _record_both(uow: DynamoUnitOfWork) -> tuple[str, str]:
    """A bus event and a topic event, recorded as ride-manager and car-dispatcher record them; their ids."""
    uow.record(NoCarAvailable(ride_id="r1", reason="x"), subject="r1")
    uow.record(
        RideUpdated(ride_id="r1", rider_id="rdr_1", version=1, ride={"v": 1}), subject="r1", sequence=1
    )
    bus, topic = uow.recorded
    assert (bus.destination.kind, topic.destination.kind) == ("bus", "topic")
    return bus.event.id, topic.event.id


def _relay(dynamodb: Dynamo, sqs: Sqs, bus: ScriptedChannel, topic: ScriptedChannel) -> Relay:
    return Relay(
        dynamodb=dynamodb,
        sqs=sqs,
        outbox_table=OUTBOX,
        dead_letter_queue_url=PRODUCER_DLQ,
        channels={"bus": bus, "topic": topic},
        counters=Counters(),
    )


def _row(dynamodb: Dynamo, event_id: str) -> dict[str, Any]:
    row = dynamodb.row(OUTBOX, eventId=event_id)
    assert row is not None
    return row


def test_every_row_carries_the_pipes_detail_type_and_source_and_bus_rows_are_the_pipes(
    dynamodb: Dynamo, clock: Clock
) -> None:
    uow = _unit_of_work(dynamodb)
    bus_id, topic_id = _record_both(uow)
    uow.commit()
    bus, topic = _row(dynamodb, bus_id), _row(dynamodb, topic_id)
    for row, (event_type, source) in (
        (bus, ("acme.acr.fleet.NoCarAvailable", "acr.car-dispatcher")),
        (topic, ("acme.acr.ride.RideUpdated", "acr.ride-manager")),
    ):
        event = json.loads(row["event"])
        assert (row["type"], row["source"]) == (event["type"], event["source"]) == (event_type, source)
    assert bus["status"] == "PIPE" and "pending" not in bus  # no relay claims it, no backlog counts it
    assert bus["expiresAt"] == int(
        clock.now + RETENTION_S
    )  # nobody marks it sent: it expires from its insert
    assert topic["pending"] == "P" and "status" not in topic and "expiresAt" not in topic


def test_with_the_polling_relay_bus_rows_stay_pending_with_type_and_source(
    dynamodb: Dynamo, clock: Clock
) -> None:
    uow = _unit_of_work(dynamodb, "polling")
    bus_id, _ = _record_both(uow)
    uow.commit()
    bus = _row(dynamodb, bus_id)
    assert (bus["pending"], bus["type"], bus["source"]) == (
        "P",
        "acme.acr.fleet.NoCarAvailable",
        "acr.car-dispatcher",
    )
    assert "status" not in bus and "expiresAt" not in bus


def test_the_relay_publishes_the_topic_rows_and_leaves_the_bus_rows_to_the_pipe(
    dynamodb: Dynamo, clock: Clock
) -> None:
    uow = _unit_of_work(dynamodb)
    bus_id, topic_id = _record_both(uow)
    uow.commit()
    written = _row(dynamodb, bus_id)
    bus, topic = ScriptedChannel(), ScriptedChannel()
    sender = _relay(dynamodb, Sqs(), bus, topic)
    assert sender.drain_once() == 1
    clock.advance(3600)
    assert sender.drain_once() == 0
    assert (bus.sent_ids(), topic.sent_ids()) == ([], [topic_id])
    assert _row(dynamodb, bus_id) == written  # never claimed, leased or marked
    assert _row(dynamodb, topic_id)["status"] == "SENT"


def test_a_topic_row_that_cannot_be_published_still_goes_to_the_producer_dlq(
    dynamodb: Dynamo, clock: Clock
) -> None:
    uow = _unit_of_work(dynamodb)
    bus_id, topic_id = _record_both(uow)
    uow.commit()
    sqs = Sqs()
    bus, topic = ScriptedChannel(), ScriptedChannel([["InvalidParameter"]])
    _relay(dynamodb, sqs, bus, topic).drain_once()
    (dead,) = sqs.queues[PRODUCER_DLQ]
    assert json.loads(dead["Body"])["event"]["id"] == topic_id
    assert _row(dynamodb, topic_id)["status"] == "DEAD"
    assert _row(dynamodb, bus_id)["status"] == "PIPE" and bus.calls == []


def test_a_bus_row_left_pending_by_polling_is_still_the_relays_after_the_switch(
    dynamodb: Dynamo, clock: Clock
) -> None:
    """Rows written before the switch are pending; the Pipe's filter leaves them (status is not PIPE), so the
    relay publishes them, and nothing is lost or sent twice while the tasks roll over."""
    before = _unit_of_work(dynamodb, "polling")
    before.record(NoCarAvailable(ride_id="r0", reason="x"), subject="r0")
    before.commit()
    after = _unit_of_work(dynamodb)
    piped_id, _ = _record_both(after)
    after.commit()
    bus = ScriptedChannel()
    _relay(dynamodb, Sqs(), bus, ScriptedChannel()).drain_once()
    assert bus.sent_ids() == [before.recorded[0].event.id]
    assert "sentAt" not in _row(dynamodb, piped_id)


def test_pipe_rows_never_count_as_pending_in_the_backlog_age_nor_its_metric(
    dynamodb: Dynamo, clock: Clock
) -> None:
    uow = _unit_of_work(dynamodb)
    uow.record(NoCarAvailable(ride_id="r1", reason="x"), subject="r1")
    uow.commit()
    sender = _relay(dynamodb, Sqs(), ScriptedChannel(), ScriptedChannel())
    clock.advance(3600)
    assert sender.oldest_pending_ms() is None
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")  # in-process moto (the fixture's)
    assert OutboxAgeMetric(cloudwatch, "svc", sender.oldest_pending_ms).put_once() == 0.0
    uow = _unit_of_work(dynamodb)
    uow.record(RideUpdated(ride_id="r1", rider_id="rdr_1", version=1, ride={}), subject="r1", sequence=1)
    uow.commit()
    clock.advance(2)
    assert sender.oldest_pending_ms() == 2000.0  # the relay's own rows still count


def test_a_commit_of_pipe_rows_only_wakes_no_relay(dynamodb: Dynamo, clock: Clock) -> None:
    woken: list[int] = []
    uow = _unit_of_work(dynamodb, woken=woken)
    uow.record(NoCarAvailable(ride_id="r1", reason="x"), subject="r1")
    uow.commit()
    assert woken == []
    uow = _unit_of_work(dynamodb, woken=woken)
    _record_both(uow)
    uow.commit()
    assert woken == [1]


def test_the_setting_is_polling_or_pipes_and_pipes_only_on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().outbox_relay == "polling"
    assert Settings(aws_endpoint_url="", outbox_relay="pipes").outbox_relay == "pipes"
    with pytest.raises(ValidationError, match="'polling' or 'pipes'"):
        Settings(aws_endpoint_url="", outbox_relay="pipe")
    with pytest.raises(ValidationError, match="needs AWS"):
        Settings(aws_endpoint_url="http://127.0.0.1:4566", outbox_relay="pipes")
    monkeypatch.setenv("ACR_OUTBOX_RELAY", "Pipes")
    assert settings_errors() == ["ACR_OUTBOX_RELAY='Pipes': Input should be 'polling' or 'pipes'"]


def test_a_service_in_pipes_mode_writes_its_bus_rows_for_the_pipe() -> None:
    """The wiring: ``Messaging`` hands the setting and the retention to every unit of work."""
    ride_manager = next(s for s in discover() if s.service == "ride-manager")
    settings = Settings(aws_endpoint_url="", outbox_relay="pipes", outbox_sent_retention_s=60)
    with in_process_messaging(ride_manager, settings) as messaging:
        uow = messaging.unit_of_work()
        assert (uow.outbox_relay, uow.sent_retention_s) == ("pipes", 60)
