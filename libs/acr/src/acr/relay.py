"""The outbox relay: claim pending rows with a lease, publish them in batches, mark them sent.

Woken right after a commit, with slow polling as the fallback. A row is claimed with a conditional
update (owner + lease expiry) so two relays do not publish it in normal operation; if a relay dies
mid-batch its lease expires and another resends the row with the same id (consumers dedupe).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.catalog.base import Destination
from acr.channels import Channel
from acr.dynamo import delete_all, from_item, is_conditional_failure, to_item
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS, Counters
from acr.publishing import DeadLetter, PublishReport, RetryPolicy, publish
from acr.unit_of_work import PENDING, Outgoing, outbox_row

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


log = logging.getLogger(__name__)
PENDING_INDEX = "pending-index"
SENT_RETENTION_S = 300.0  # sent rows serve the ops timeline and resend counts; then they only cost
DEFAULT_POLICY = RetryPolicy()


@dataclass
class Claimed:
    outgoing: Outgoing
    created_at: float


class Relay:
    """Moves outbox rows of one service to their bus or topic."""

    def __init__(
        self,
        *,
        dynamodb: DynamoDBClient,
        sqs: SQSClient,
        outbox_table: str,
        dead_letter_queue_url: str,
        channels: dict[str, Channel],
        lease_s: float = 30.0,
        poll_s: float = 5.0,
        sent_retention_s: float = SENT_RETENTION_S,
        policy: RetryPolicy = DEFAULT_POLICY,
        counters: Counters = COUNTERS,
    ) -> None:
        self._dynamodb = dynamodb
        self._sqs = sqs
        self._table = outbox_table
        self._dlq_url = dead_letter_queue_url
        self._channels = channels
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._sent_retention_s = sent_retention_s
        self._purge_every_s = sent_retention_s / 4
        self._policy = policy
        self._counters = counters
        self._owner = f"relay-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()

    def wake(self) -> None:
        """Called right after a commit that recorded events."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; every quarter of the retention, purge rows sent before it."""
        purged_at = time.monotonic() - random.uniform(
            0, self._purge_every_s
        )  # relays purge at their own times
        while not stop.is_set():
            try:
                if time.monotonic() - purged_at > self._purge_every_s:
                    purged_at = time.monotonic()
                    self.purge_sent()
                if self.drain_once() == 0:
                    self._wake.wait(self._poll_s)
                    self._wake.clear()
            except Exception:  # the loop must survive an emulator hiccup
                log.exception("relay round failed")
                stop.wait(self._poll_s)

    def drain_once(self, limit: int = 50) -> int:
        """One round: claim up to ``limit`` pending rows and publish them. Returns rows handled."""
        claimed = [c for c in (self._claim(row) for row in self._pending(limit)) if c]
        by_destination: dict[Destination, list[Claimed]] = {}
        for c in claimed:
            by_destination.setdefault(c.outgoing.destination, []).append(c)
        for destination, rows in by_destination.items():
            channel = self._channels[destination.kind]
            for start in range(0, len(rows), channel.max_batch):
                self._publish(channel, rows[start : start + channel.max_batch])
        return len(claimed)

    def _pending(self, limit: int) -> list[dict[str, Any]]:
        response = self._dynamodb.query(
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": "pending"},
            ExpressionAttributeValues={":p": {"S": PENDING}},
            Limit=limit,
        )
        return [from_item(item) for item in response.get("Items", [])]

    def _claim(self, row: dict[str, Any]) -> Claimed | None:
        now = time.time()
        try:
            claimed = self._dynamodb.update_item(
                TableName=self._table,
                Key=to_item({"eventId": row["eventId"]}),
                UpdateExpression="SET leaseOwner = :me, leaseUntil = :until ADD claims :one",
                ConditionExpression="#p = :p AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
                ExpressionAttributeNames={"#p": "pending"},
                ExpressionAttributeValues=to_item(
                    {":me": self._owner, ":until": now + self._lease_s, ":now": now, ":p": PENDING, ":one": 1}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        # A row claimed again (its relay died after sending) is a resend: it counts in eventcount.
        claims = int(from_item(claimed["Attributes"]).get("claims", 1))
        event = CloudEvent.from_json(row["event"])
        event = event.model_copy(update={"eventcount": event.eventcount + claims - 1})
        outgoing = Outgoing(event, Destination.parse(row["destination"]), row.get("group"))
        return Claimed(outgoing, float(row["createdAt"]))

    def _publish(self, channel: Channel, rows: list[Claimed]) -> None:
        report = publish(channel, [c.outgoing for c in rows], self._policy)
        self._record(report, rows)

    def _record(self, report: PublishReport, rows: list[Claimed]) -> None:
        created = {c.outgoing.event.id: c.created_at for c in rows}
        for outgoing in report.sent:
            self._finish(outgoing, "SENT")
            self._counters.relay_lag_ms = (time.time() - created[outgoing.event.id]) * 1000
        for dead in report.dead:
            self._dead_letter(dead)
            self._finish(dead.outgoing, "DEAD")
        self._counters.add("published", len(report.sent))
        self._counters.add_resent(report.resent)
        self._counters.add("deadLettered", len(report.dead))

    def _finish(self, outgoing: Outgoing, status: str) -> None:
        self._dynamodb.update_item(
            TableName=self._table,
            Key=to_item({"eventId": outgoing.event.id}),
            UpdateExpression="SET #s = :s, sentAt = :now, expiresAt = :exp, eventcount = :n REMOVE #p",
            ExpressionAttributeNames={"#s": "status", "#p": "pending"},
            ExpressionAttributeValues=to_item(
                {
                    ":s": status,
                    ":now": time.time(),
                    ":exp": int(time.time() + self._sent_retention_s),
                    ":n": outgoing.event.eventcount,
                }
            ),
        )

    def _dead_letter(self, dead: DeadLetter) -> None:
        log.error("event %s dead-lettered: %s", dead.outgoing.event.id, dead.error_code)
        self._sqs.send_message(
            QueueUrl=self._dlq_url,
            MessageBody=json.dumps(
                {
                    "destination": str(dead.outgoing.destination),
                    "group": dead.outgoing.group,
                    "event": json.loads(dead.outgoing.event.to_json()),
                }
            ),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": dead.error_code}},
        )

    def purge_sent(self) -> int:
        """Delete rows sent longer ago than the retention (TTL on ``expiresAt`` does the same on AWS)."""
        cutoff = time.time() - self._sent_retention_s
        keys = [
            to_item({"eventId": item["eventId"]})
            for item in _scan(
                self._dynamodb,
                self._table,
                "attribute_exists(sentAt) AND sentAt < :c",
                {":c": cutoff},
                "eventId",
            )
        ]
        delete_all(self._dynamodb, self._table, keys)
        return len(keys)


def _scan(
    dynamodb: Any, table: str, condition: str, values: dict[str, Any], attributes: str | None = None
) -> Iterable[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": condition,
        "ExpressionAttributeValues": to_item(values),
    }
    if attributes:
        kwargs["ProjectionExpression"] = attributes
    while True:
        page = dynamodb.scan(**kwargs)
        yield from (from_item(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def events_about(dynamodb: Any, outbox_table: str, subject: str) -> list[dict[str, Any]]:
    """What this service recorded about ``subject`` (e.g. a ride id), oldest first: the ops timeline."""
    rows = _scan(dynamodb, outbox_table, "subject = :s", {":s": subject})
    events = []
    for row in rows:
        event = CloudEvent.from_json(row["event"])
        events.append(
            {
                "type": event.type,
                "source": event.source,
                "id": event.id,
                "time": event.time.isoformat(),
                "eventcount": int(row.get("eventcount", event.eventcount)),
                "sequence": event.sequence,
                "destination": row["destination"],
                "status": row.get("status", "PENDING"),
            }
        )
    return sorted(events, key=lambda e: (e["time"], e["sequence"] or 0))


def redrive(
    *,
    sqs: SQSClient,
    dynamodb: DynamoDBClient,
    dead_letter_queue_url: str,
    outbox_table: str,
    limit: int = 1000,
) -> int:
    """Put dead-lettered events back in the outbox — same id, one more send — for the relay to publish,
    and take them off the producer DLQ. Returns how many were put back."""
    moved = 0
    while moved < limit:
        page = sqs.receive_message(
            QueueUrl=dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
        )
        messages = page.get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            body = json.loads(message["Body"])
            outgoing = Outgoing(
                CloudEvent.from_json(json.dumps(body["event"])).resent(),
                Destination.parse(body["destination"]),
                body.get("group"),
            )
            dynamodb.put_item(TableName=outbox_table, Item=to_item(outbox_row(outgoing, time.time())))
            sqs.delete_message(QueueUrl=dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
