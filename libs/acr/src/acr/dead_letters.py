"""A service's own dead-letter queues, read and redriven by the service itself (``/v1/ops/dlq``): the DLQ of
each of its subscriptions (each replica's copy, for a slice whose deliveries are per replica) and its producer
DLQ. The service's own role is all a redrive needs: it may read its DLQs and send to its own queues, which
no other service's role may (acr.topology.queue_policy), and each account runs its own services, so every
context's DLQs are listed however the contexts are spread over accounts.

A consumer DLQ's messages go back to the queue they came from; a producer DLQ's events are put back in the
outbox (``acr.relay.redrive``), for the relay to publish them again with the same ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.errors import NotFound
from acr.topology.model import ServiceTopology
from acr.topology.replicas import is_replica_copy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

PEEK_BATCHES = 3
"""A listing reads up to 30 messages of each DLQ for their reasons (10 a receive)."""
MAX_REDRIVE = 1000
"""A redrive moves at most this many messages; the operator redrives again for the rest."""
_DLQ_ATTRIBUTES = ("reason", "detail", "sourceQueue")
"""What the consumer added when it dead-lettered a message: left behind when the message goes back."""
_GONE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")

Attributes = Mapping[str, "MessageAttributeValueOutputTypeDef"]


def string_attribute(attributes: Attributes, name: str) -> str | None:
    """The string value of a message attribute, if the message has it."""
    attribute = attributes.get(name)
    return attribute.get("StringValue") if attribute is not None else None


def source_queue(dlq: str, attributes: Attributes) -> str:
    """Where a dead letter came from: its ``sourceQueue`` attribute, else the DLQ name without ``-dlq``
    (what SQS's own redrive policy moved there carries no attribute)."""
    return string_attribute(attributes, "sourceQueue") or dlq.replace("-dlq", "", 1)


def _gone(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _GONE


class DeadLetterQueues:
    """The DLQs of one service, over its SQS client. ``republish`` redrives its producer DLQ (the
    relay's)."""

    def __init__(
        self, sqs: SQSClient, topology: ServiceTopology, republish: Callable[[], int] | None = None
    ) -> None:
        self._sqs = sqs
        self._topology = topology
        self._republish = republish

    @property
    def producer_dlq(self) -> str | None:
        return self._topology.producer_dlq if self._republish is not None else None

    def names(self) -> list[str]:
        """The service's DLQs, sorted: its consumers' (the copies that exist now, when per replica) and
        its producer's."""
        declared = [dlq for _, dlq, _ in self._topology.all_queues()]
        if self._topology.per_replica and declared:
            own = self._listed(f"acr-{self._topology.service}-")
            consumers = [name for name in own if any(is_replica_copy(name, dlq) for dlq in declared)]
        else:
            consumers = declared
        return sorted(consumers + ([self.producer_dlq] if self.producer_dlq else []))

    def listed(self) -> list[dict[str, Any]]:
        """Each DLQ with its depth and the reasons of the messages a peek saw (``unknown``: none given);
        a replica's copy removed meanwhile is left out."""
        found = []
        for name in self.names():
            try:
                found.append(self._describe(name))
            except ClientError as exc:
                if not _gone(exc):
                    raise
        return found

    def redrive(self, queue: str) -> dict[str, Any]:
        """Move ``queue``'s messages back to where they came from (up to ``MAX_REDRIVE``); for the producer
        DLQ, put its events back in the outbox. ``NotFound`` for a queue that is not one of the service's
        DLQs."""
        if queue not in self.names():
            raise NotFound(f"{queue} is not a dead-letter queue of {self._topology.service}")
        if queue == self.producer_dlq and self._republish is not None:
            return {"queue": queue, "redriven": self._republish()}
        url = self._url(queue)
        targets: dict[str, str] = {}
        moved = 0
        while moved < MAX_REDRIVE:
            page = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, MAX_REDRIVE - moved),
                VisibilityTimeout=30,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId"],
            )
            messages = page.get("Messages", [])
            if not messages:
                break
            for message in messages:
                self._move(queue, url, message, targets)
                moved += 1
        return {"queue": queue, "redriven": moved}

    def _listed(self, prefix: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"QueueNamePrefix": prefix, "MaxResults": 1000}
        while True:
            page = self._sqs.list_queues(**kwargs)
            names += [url.rsplit("/", 1)[-1] for url in page.get("QueueUrls", [])]
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]

    def _describe(self, name: str) -> dict[str, Any]:
        url = str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depth = int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))
        reasons: Counter[str] = Counter()
        if depth:
            for message in self._peek(url):
                reasons[string_attribute(message.get("MessageAttributes", {}), "reason") or "unknown"] += 1
        return {"queue": name, "depth": depth, "reasons": dict(reasons)}

    def _peek(self, url: str) -> list[MessageTypeDef]:
        """Up to 30 messages, left visible (visibility timeout 0), each counted once."""
        seen: dict[str, MessageTypeDef] = {}
        for _ in range(PEEK_BATCHES):
            page = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            )
            for message in page.get("Messages", []):
                seen.setdefault(message["MessageId"], message)
        return list(seen.values())

    def _url(self, name: str) -> str:
        try:
            return str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if _gone(exc):
                raise NotFound(f"no queue {name}") from exc
            raise

    def _move(self, dlq: str, dlq_url: str, message: MessageTypeDef, targets: dict[str, str]) -> None:
        """Send one dead letter back (its own attributes, its FIFO group), then delete it from the DLQ: a
        crash in between sends it twice, which the consumer's inbox absorbs."""
        attributes = message.get("MessageAttributes", {})
        target = source_queue(dlq, attributes)
        if not target.startswith(f"acr-{self._topology.service}-"):  # never another service's queue
            target = source_queue(dlq, {})
        if target not in targets:
            targets[target] = self._url(target)
        kwargs: dict[str, Any] = {"QueueUrl": targets[target], "MessageBody": message["Body"]}
        kept = {k: v for k, v in attributes.items() if k not in _DLQ_ATTRIBUTES}
        if kept:
            kwargs["MessageAttributes"] = kept
        if target.endswith(".fifo"):
            kwargs["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "redrive")
            kwargs["MessageDeduplicationId"] = message["MessageId"]
        self._sqs.send_message(**kwargs)
        self._sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
