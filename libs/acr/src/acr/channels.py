"""Channels the relay publishes through: EventBridge buses and SNS FIFO topics.

Each ``send`` returns one result per entry, in request order: None when accepted, else the error code.
A transport failure of the whole call raises ``TransportError`` (every entry is then retryable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from acr.faults import Faults
from acr.unit_of_work import Outgoing

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef


EVENTBRIDGE_BATCH = 10
SNS_BATCH = 10


class TransportError(Exception):
    """The call itself failed (timeout, connection, 5xx): the entries' fate is unknown."""


def _whole_call_failed(exc: BotoCoreError | ClientError, entries: int) -> list[str | None]:
    """A rejected call fails every entry with its code; an unanswered one is a transport failure."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if code and status < 500 and "Throttl" not in code:
            return [code] * entries
    raise TransportError(str(exc)) from exc


class Channel(Protocol):
    max_batch: int

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]: ...


class EventBridgeChannel:
    """``PutEvents`` to the outgoing events' buses; the CloudEvent is the ``Detail``."""

    max_batch = EVENTBRIDGE_BATCH

    def __init__(self, events_client: EventBridgeClient) -> None:
        self._events = events_client

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        entries: list[PutEventsRequestEntryTypeDef] = [
            {
                "Source": o.event.source,
                "DetailType": o.event.type,
                "Detail": o.event.to_json(),
                "EventBusName": o.destination.name,
                "Resources": [],
            }
            for o in batch
        ]
        try:
            response = self._events.put_events(Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            return _whole_call_failed(exc, len(batch))
        results = response.get("Entries", [])
        if len(results) != len(batch):
            raise TransportError(f"PutEvents answered {len(results)} entries for {len(batch)}")
        return [r.get("ErrorCode") or None for r in results]


class SnsFifoChannel:
    """``PublishBatch`` to SNS FIFO topics: group = aggregate id, dedup id = event id."""

    max_batch = SNS_BATCH

    def __init__(self, sns_client: SNSClient, topic_arns: dict[str, str]) -> None:
        self._sns = sns_client
        self._topic_arns = topic_arns

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        topics = {o.destination.name for o in batch}
        if len(topics) != 1:
            raise ValueError("one SNS batch goes to one topic")
        request: list[PublishBatchRequestEntryTypeDef] = [
            {
                "Id": str(i),
                "Message": o.event.to_json(),
                "MessageGroupId": o.group or o.event.subject or o.event.id,
                "MessageDeduplicationId": o.event.id,
            }
            for i, o in enumerate(batch)
        ]
        try:
            response = self._sns.publish_batch(
                TopicArn=self._topic_arns[topics.pop()], PublishBatchRequestEntries=request
            )
        except (BotoCoreError, ClientError) as exc:
            return _whole_call_failed(exc, len(batch))
        results: list[str | None] = [None] * len(batch)
        for failed in response.get("Failed", []):
            # A failure on the service's side (not the sender's) may pass on a resend.
            sender = failed.get("SenderFault", True)
            results[int(failed["Id"])] = (
                "InternalFailure" if not sender else failed.get("Code") or "InvalidParameter"
            )
        return results


SCOPED_FAULTS = {
    "bus": ("eventbridge.throttle", "ThrottlingException"),
    "topic": ("sns.failure", "InternalFailure"),
}
"""Per channel kind: the fault that hits only that kind of channel, and the code its entries answer."""


class FaultyChannel:
    """Wraps a channel with injected faults: per-entry throttling and internal failures (those entries
    are not sent), lost acknowledgements (sent, but the producer sees a transport error), and the fault
    of its own kind (``SCOPED_FAULTS``: EventBridge throttled, SNS failing). When no fault can happen
    (no rate, no open window) the batch goes straight to the inner channel."""

    def __init__(self, inner: Channel, faults: Faults, kind: str | None = None) -> None:
        self._inner = inner
        self._faults = faults
        self._scoped = SCOPED_FAULTS.get(kind or "")
        self.max_batch = inner.max_batch

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        if not self._faults.active:
            return self._inner.send(batch)
        results = self._injected(len(batch))
        sent = [i for i, code in enumerate(results) if code is None]
        if sent:
            for i, code in zip(sent, self._inner.send([batch[i] for i in sent]), strict=True):
                results[i] = code
            if self._faults.hit("publish.lost_ack"):
                raise TransportError("injected: the acknowledgement was lost")
        return results

    def _injected(self, count: int) -> list[str | None]:
        """The code each entry answers without being sent, or None for the entries that go out."""
        throttled = self._faults.pick("publish.throttle", count)
        failed = self._faults.pick("publish.partial_failure", count) - throttled
        results: list[str | None] = [
            "ThrottlingException" if i in throttled else "InternalFailure" if i in failed else None
            for i in range(count)
        ]
        if self._scoped is not None:
            name, code = self._scoped
            for i in self._faults.pick(name, count) - throttled - failed:
                results[i] = code
        return results
