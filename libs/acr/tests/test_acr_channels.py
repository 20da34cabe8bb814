"""Retryable vs non-retryable: per-entry codes matched by index, and whole-call failures of both channels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from acr_exactly_once_fakes import ScriptedChannel
from botocore.exceptions import ClientError, EndpointConnectionError

from acr.catalog.fleet import NoCarAvailable
from acr.catalog.ride import RideUpdated
from acr.channels import EventBridgeChannel, SnsFifoChannel, TransportError
from acr.publishing import RETRYABLE, publish
from acr.unit_of_work import Outgoing, outgoing


def _batch(n: int) -> list[Outgoing]:
    """Events for the fleet bus, as the kernel addresses them."""
    return [outgoing(NoCarAvailable(ride_id=f"r{i}", reason="x"), subject=f"r{i}") for i in range(n)]


def _client_error(code: str, status: int, operation: str = "PutEvents") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class _Events:
    """``put_events`` answering from a script: a response, or an exception to raise."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        answer = self.answers.pop(0) if self.answers else {"Entries": [{"EventId": "x"} for _ in Entries]}
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize("code", sorted(RETRYABLE))
def test_each_retryable_code_is_to_be_resent(code: str) -> None:
    batch = _batch(1)
    report = publish(ScriptedChannel([[code]]), batch)
    assert report.resent() == {code: 1} and not report.dead and not report.sent
    assert report.retry[0].outgoing.event.id == batch[0].event.id


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException", "MalformedDetail"])
def test_a_non_retryable_code_is_dead_lettered_at_once(code: str) -> None:
    report = publish(ScriptedChannel([[code]]), _batch(1))
    assert [d.error_code for d in report.dead] == [code] and not report.retry


def test_eventbridge_entries_are_matched_to_their_request_by_index() -> None:
    batch = _batch(3)
    events = _Events({"Entries": [{"EventId": "a"}, {"ErrorCode": "ThrottlingException"}, {"EventId": "c"}]})
    assert EventBridgeChannel(events).send(batch) == [None, "ThrottlingException", None]
    detail = json.loads(events.calls[0][1]["Detail"])
    assert (detail["id"], events.calls[0][1]["EventBusName"]) == (batch[1].event.id, "acr-fleet")


def test_eventbridge_answering_the_wrong_number_of_entries_is_a_transport_error() -> None:
    with pytest.raises(TransportError):
        EventBridgeChannel(_Events({"Entries": [{"EventId": "a"}]})).send(_batch(2))


def test_a_rejected_whole_call_dead_letters_every_entry_with_its_code() -> None:
    batch = _batch(3)
    events = _Events(_client_error("ValidationException", 400))
    report = publish(EventBridgeChannel(events), batch)
    assert len(events.calls) == 1
    assert [(d.outgoing.event.id, d.error_code) for d in report.dead] == [
        (o.event.id, "ValidationException") for o in batch
    ]


@pytest.mark.parametrize(
    "failure",
    [
        _client_error("InternalFailure", 500),
        _client_error("ServiceUnavailable", 503),
        _client_error("ThrottlingException", 400),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:4566"),
    ],
    ids=["5xx", "503", "throttled-400", "connection"],
)
def test_a_whole_call_that_failed_in_transport_or_was_throttled_is_to_be_retried(failure: Exception) -> None:
    batch = _batch(2)
    events = _Events(failure)
    report = publish(EventBridgeChannel(events), batch)
    assert len(events.calls) == 1 and not report.dead and report.unanswered
    assert [(r.outgoing.event.id, r.reason) for r in report.retry] == [
        (o.event.id, "transport") for o in batch
    ]


class _Sns:
    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def publish_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _updates(n: int) -> list[Outgoing]:
    """Ride snapshots for the ride updates topic (grouped by ride), as the kernel addresses them."""
    out = []
    for v in range(1, n + 1):
        data = RideUpdated(ride_id="ride_1", rider_id="rdr_1", version=v, ride={"requestedAt": "t"})
        out.append(outgoing(data, subject="ride_1", sequence=v))
    return out


def test_sns_fifo_uses_the_ride_as_group_and_the_event_id_as_dedup_id_and_maps_failures_by_id() -> None:
    batch = _updates(3)
    sns = _Sns({"Successful": [{"Id": "0"}, {"Id": "2"}], "Failed": [{"Id": "1", "Code": "Throttled"}]})
    channel = SnsFifoChannel(sns, {"acr-ride-updates.fifo": "arn:aws:sns:us-east-1:0:acr-ride-updates.fifo"})
    assert channel.send(batch) == [None, "Throttled", None]
    entries = sns.calls[0]["PublishBatchRequestEntries"]
    assert [(e["MessageGroupId"], e["MessageDeduplicationId"]) for e in entries] == [
        ("ride_1", o.event.id) for o in batch
    ]


def test_sns_rejected_whole_call_fails_every_entry_and_a_5xx_is_transport() -> None:
    arns = {"acr-ride-updates.fifo": "arn"}
    rejected = SnsFifoChannel(_Sns(_client_error("InvalidParameter", 400, "PublishBatch")), arns)
    assert rejected.send(_updates(2)) == ["InvalidParameter", "InvalidParameter"]
    with pytest.raises(TransportError):
        SnsFifoChannel(_Sns(_client_error("InternalError", 500, "PublishBatch")), arns).send(_updates(2))


def test_a_batch_larger_than_the_channel_allows_is_refused() -> None:
    with pytest.raises(ValueError):
        publish(ScriptedChannel(), _batch(11))


def test_an_sns_entry_that_failed_on_the_service_side_is_to_be_resent() -> None:
    batch = _updates(2)
    sns = _Sns(
        {"Successful": [{"Id": "0"}], "Failed": [{"Id": "1", "Code": "InternalError", "SenderFault": False}]}
    )
    report = publish(SnsFifoChannel(sns, {"acr-ride-updates.fifo": "arn"}), batch)
    assert not report.dead and [o.event.id for o in report.sent] == [batch[0].event.id]
    assert [(r.outgoing.event.id, r.reason) for r in report.retry] == [(batch[1].event.id, "InternalFailure")]
