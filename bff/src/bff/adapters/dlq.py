"""The dead-letter queues (``acr-*-dlq*``) of the emulator or AWS, read and redriven with boto3.

boto3 is blocking: every public method runs its work in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from acr.errors import NotFound, ServiceError, ValidationFailed
from bff.errors import ServiceUnavailable
from bff.ports import Json

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

log = logging.getLogger(__name__)

PEEK_BATCHES = 3
MAX_REDRIVE = 1000
_DLQ_ATTRIBUTES = ("reason", "detail", "sourceQueue")
T = TypeVar("T")


def is_dlq(name: str) -> bool:
    """ACR's dead-letter queues: ``acr-<service>-<queue>-dlq[.fifo]`` and ``acr-<service>-producer-dlq``."""
    return name.startswith("acr-") and "-dlq" in name


Attributes = Mapping[str, "MessageAttributeValueOutputTypeDef"]


def string_attribute(attributes: Attributes, name: str) -> str | None:
    """The string value of a message attribute, if the message has it."""
    attribute = attributes.get(name)
    return attribute.get("StringValue") if attribute is not None else None


def source_queue(dlq: str, attributes: Attributes) -> str:
    """Where a dead letter came from: its ``sourceQueue`` attribute, else the DLQ name without ``-dlq``."""
    return string_attribute(attributes, "sourceQueue") or dlq.replace("-dlq", "", 1)


class SqsDeadLetters:
    """``DeadLetters`` over an SQS client."""

    def __init__(self, sqs: SQSClient) -> None:
        self._sqs = sqs

    async def queues(self) -> list[Json]:
        return await self._offload(self._queues)

    async def redrive(self, queue: str) -> Json:
        return await self._offload(self._redrive, queue)

    async def _offload(self, fn: Callable[..., T], *args: str) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except ServiceError:
            raise
        except Exception as exc:  # botocore transport errors, emulator down
            log.warning("sqs unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable("sqs") from exc

    def _queue_names(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"QueueNamePrefix": "acr-", "MaxResults": 1000}
        while True:
            page = self._sqs.list_queues(**kwargs)
            names += [url.rsplit("/", 1)[-1] for url in page.get("QueueUrls", [])]
            if not page.get("NextToken"):
                return sorted(n for n in names if is_dlq(n))
            kwargs["NextToken"] = page["NextToken"]

    def _queues(self) -> list[Json]:
        return [self._describe(name) for name in self._queue_names()]

    def _describe(self, name: str) -> Json:
        url = self._url(name)
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
            raise NotFound(f"no queue {name}") from exc

    def _redrive(self, queue: str) -> Json:
        if not is_dlq(queue):
            raise NotFound(f"{queue} is not a dead-letter queue")
        if "-producer-dlq" in queue:
            raise ValidationFailed(
                f"{queue} holds unpublished events: the owning service's relay redrives them"
            )
        url = self._url(queue)
        moved = 0
        while moved < MAX_REDRIVE:
            page = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId"],
            )
            messages = page.get("Messages", [])
            if not messages:
                break
            for message in messages:
                self._move(queue, url, message)
                moved += 1
        return {"queue": queue, "redriven": moved}

    def _move(self, dlq: str, dlq_url: str, message: MessageTypeDef) -> None:
        attributes = message.get("MessageAttributes", {})
        target = source_queue(dlq, attributes)
        kwargs: dict[str, Any] = {
            "QueueUrl": self._url(target),
            "MessageBody": message["Body"],
        }
        kept = {k: v for k, v in attributes.items() if k not in _DLQ_ATTRIBUTES}
        if kept:
            kwargs["MessageAttributes"] = kept
        if target.endswith(".fifo"):
            kwargs["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "redrive")
            kwargs["MessageDeduplicationId"] = message["MessageId"]
        self._sqs.send_message(**kwargs)
        self._sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
