"""The outbox relay: claim due rows with a lease, publish them in batches, finish only what it still holds.

Woken right after a commit; otherwise it waits for the sooner of its poll interval and the earliest
backoff it stored. A row is claimed with a conditional update (owner + lease expiry, one more send
counted on the row) so two relays do not publish it in normal operation; if a relay dies mid-batch its
lease expires and another resends the row with the same id (consumers dedupe). A retryable failure never
dead-letters: the row stays pending with its next attempt stored on it; a destination that answered
nothing (down, throttling) gets no more rows from this relay until then, so its rows go out in order when
it answers again. Every write that finishes a row (SENT, DEAD, a backoff) is conditional on the lease owner:
a relay whose lease was taken over leaves the new owner's work alone.

Rows of one FIFO group (an SNS FIFO topic's message group, e.g. one ride's versions) go out one at a time,
oldest first: a group's later row waits while an earlier one is pending (backing off, or held by a relay),
so a retried row never lets a newer one of its group overtake it.

With the ``pipes`` relay (``ACR_OUTBOX_RELAY``) bus rows are written never pending (``outbox_row``): the
outbox's Pipe publishes them from the table's stream and this relay never sees them. It keeps the topic rows
(a Pipe cannot target SNS FIFO), its DLQ and redrive for them, and publishes any bus row still pending from
before a switch to Pipes, which the Pipe's filter leaves alone.
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

from acr import tracing
from acr.catalog.base import Destination
from acr.channels import Channel
from acr.dynamo import from_item, is_conditional_failure, to_item
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS, Counters
from acr.publishing import Backoff, DeadLetter, PublishReport, publish
from acr.unit_of_work import PENDING, SENT_RETENTION_S, Outgoing, outbox_row

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


log = logging.getLogger(__name__)
PENDING_INDEX = "pending-index"
SUBJECT_INDEX = "subject-index"
DEFAULT_BACKOFF = Backoff()
FREE = "(attribute_not_exists(leaseUntil) OR leaseUntil < :now)"
DUE = "(attribute_not_exists(nextAttemptAt) OR nextAttemptAt <= :now)"
GROUPED = "attribute_exists(#g)"  # rows of a FIFO group are always read: an earlier one holds the later back


@dataclass
class Claimed:
    """A row this relay holds: its event as this send carries it, and how many sends the row has had
    (this one included)."""

    outgoing: Outgoing
    created_at: float
    sends: int


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
        backoff: Backoff = DEFAULT_BACKOFF,
        counters: Counters = COUNTERS,
        rng: random.Random | None = None,
    ) -> None:
        self._dynamodb = dynamodb
        self._sqs = sqs
        self._table = outbox_table
        self._dlq_url = dead_letter_queue_url
        self._channels = channels
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._sent_retention_s = sent_retention_s
        self._backoff = backoff
        self._counters = counters
        self._rng = rng or random.Random()
        self._owner = f"relay-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._blocked_until: dict[Destination, float] = {}  # destinations that answered nothing
        self._next_attempt: float | None = None  # the earliest backoff this relay stored

    def wake(self) -> None:
        """Called right after a commit that recorded events."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set. Sent rows expire by their ``expiresAt`` (``acr.sweeper`` deletes
        them where DynamoDB TTL does not run)."""
        while not stop.is_set():
            try:
                if self.drain_once() == 0:
                    self._wake.wait(self.idle_s())
                    self._wake.clear()
            except Exception:  # the loop must survive an emulator hiccup
                log.exception("relay round failed")
                stop.wait(self._poll_s)

    def idle_s(self) -> float:
        """How long a relay with nothing due waits for a wake-up: its poll interval, or less when a backoff
        it stored ends sooner."""
        if self._next_attempt is None:
            return self._poll_s
        wait = self._next_attempt - time.time()
        if wait <= 0:
            self._next_attempt = None
        return min(self._poll_s, max(0.0, wait))

    def drain_once(self, limit: int = 50) -> int:
        """One round: publish up to ``limit`` due rows, oldest first. Returns the rows this relay claimed
        (sent, dead-lettered or backed off)."""
        by_destination: dict[Destination, list[dict[str, Any]]] = {}
        for row in self._due(limit):
            by_destination.setdefault(Destination.parse(row["destination"]), []).append(row)
        return sum(self._drain(destination, rows) for destination, rows in by_destination.items())

    def _due(self, limit: int) -> list[dict[str, Any]]:
        """Pending rows, oldest first, that no live lease holds, whose next attempt has come, and whose
        destination this relay is not holding back; of a FIFO group only its oldest pending row, and only
        when that one is due. The query skips the other ungrouped rows (its filter reads past them page
        by page), so rows behind them are not starved."""
        now = time.time()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": PENDING_INDEX,
            "KeyConditionExpression": "#p = :p",
            "FilterExpression": f"({GROUPED} OR ({DUE} AND {FREE}))",
            "ExpressionAttributeNames": {"#p": "pending", "#g": "group"},
            "ExpressionAttributeValues": {":p": PENDING, ":now": now},
        }
        held_back = [str(d) for d in list(self._blocked_until) if self._blocked(d)]
        if held_back:
            placeholders = [f":held{i}" for i in range(len(held_back))]
            kwargs["FilterExpression"] += f" AND NOT (#d IN ({', '.join(placeholders)}))"
            kwargs["ExpressionAttributeNames"]["#d"] = "destination"
            kwargs["ExpressionAttributeValues"] |= dict(zip(placeholders, held_back, strict=True))
        kwargs["ExpressionAttributeValues"] = to_item(kwargs["ExpressionAttributeValues"])
        rows: list[dict[str, Any]] = []
        seen_groups: set[str] = set()
        while len(rows) < limit:
            page = self._dynamodb.query(**kwargs)
            rows += _heads_of_groups([from_item(item) for item in page.get("Items", [])], seen_groups, now)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return rows[:limit]

    def _drain(self, destination: Destination, rows: list[dict[str, Any]]) -> int:
        """Publish ``rows`` in batches, in order, until the destination answers nothing: the rest is left
        as it is (untouched, still due, skipped by the next queries) until that batch's next attempt,
        and then goes out behind it."""
        channel = self._channels[destination.kind]
        handled = 0
        for start in range(0, len(rows), channel.max_batch):
            if self._blocked(destination):
                break
            handled += self._publish(destination, channel, rows[start : start + channel.max_batch])
        return handled

    def _blocked(self, destination: Destination) -> bool:
        """Did ``destination`` answer nothing to this relay's last batch, whose next attempt is to come?"""
        until = self._blocked_until.get(destination)
        if until is not None and until <= time.time():
            del self._blocked_until[destination]
            return False
        return until is not None

    def _claim(self, row: dict[str, Any]) -> Claimed | None:
        now = time.time()
        try:
            claimed = self._dynamodb.update_item(
                TableName=self._table,
                Key=to_item({"eventId": row["eventId"]}),
                UpdateExpression="SET leaseOwner = :me, leaseUntil = :until ADD claims :one",
                ConditionExpression=f"#p = :p AND {FREE} AND {DUE}",
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
        # Each claim is at most one send, counted on the row: the send's eventcount is one more than the
        # row's last send, whichever relay made it.
        sends = int(from_item(claimed["Attributes"]).get("claims", 1))
        event = CloudEvent.from_json(row["event"])
        event = event.model_copy(update={"eventcount": event.eventcount + sends - 1})
        outgoing = Outgoing(event, Destination.parse(row["destination"]), row.get("group"))
        return Claimed(outgoing, float(row["createdAt"]), sends)

    def _publish(self, destination: Destination, channel: Channel, rows: list[dict[str, Any]]) -> int:
        claimed = [c for c in (self._claim(row) for row in rows) if c]
        if claimed:
            events = [c.outgoing.event for c in claimed]
            with tracing.publishing(str(destination), {e.id: (e.traceparent, e.tracestate) for e in events}):
                report = publish(channel, [c.outgoing for c in claimed])
            self._record(report, claimed)
            self._back_off(destination, report, claimed)
        return len(claimed)

    def _record(self, report: PublishReport, rows: list[Claimed]) -> None:
        created = {c.outgoing.event.id: c.created_at for c in rows}
        for outgoing in report.sent:
            if self._finish(outgoing, "SENT"):
                self._counters.relay_sent(time.time() - created[outgoing.event.id])
        for dead in report.dead:
            if self._renew(dead.outgoing):
                self._dead_letter(dead)
                self._finish(dead.outgoing, "DEAD")
        self._counters.add("published", len(report.sent))
        for dead in report.dead:
            self._counters.dead_lettered(dead.error_code)

    def _back_off(self, destination: Destination, report: PublishReport, rows: list[Claimed]) -> None:
        """Store one next attempt on every row that may pass later (exponential in the most sends any of
        them had); a destination that answered nothing gets nothing more from this relay until then."""
        if not report.retry:
            return
        sends = {c.outgoing.event.id: c.sends for c in rows}
        worst = max(sends[r.outgoing.event.id] for r in report.retry)
        until = time.time() + self._backoff.delay(worst, self._rng)
        for retry in report.retry:
            self._retry_later(retry.outgoing, until)
        self._counters.add_resent(report.resent())
        self._remember(until)
        if report.unanswered:
            self._blocked_until[destination] = until
            log.info(
                "%s answered nothing (%s): its rows wait %.1f s",
                destination,
                report.retry[0].reason,
                until - time.time(),
            )

    def _remember(self, until: float) -> None:
        current = self._next_attempt
        if current is None or current <= time.time() or until < current:
            self._next_attempt = until

    # --- writes that finish a row: each only while this relay still holds it --------------------------
    def _owned_update(
        self, outgoing: Outgoing, expression: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> bool:
        """Apply ``expression`` to the row if this relay still holds its lease; False (and counted) when
        another relay took the row over."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=to_item({"eventId": outgoing.event.id}),
                UpdateExpression=expression,
                ConditionExpression="leaseOwner = :me AND #p = :p",
                ExpressionAttributeNames={"#p": "pending"} | (names or {}),
                ExpressionAttributeValues=to_item({":me": self._owner, ":p": PENDING} | values),
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            log.warning("lost the lease of %s to another relay: its row is left alone", outgoing.event.id)
            self._counters.add("leaseLost")
            return False
        return True

    def _finish(self, outgoing: Outgoing, status: str) -> bool:
        now = time.time()
        return self._owned_update(
            outgoing,
            "SET #s = :s, sentAt = :now, expiresAt = :exp, eventcount = :n REMOVE #p",
            {
                ":s": status,
                ":now": now,
                ":exp": int(now + self._sent_retention_s),
                ":n": outgoing.event.eventcount,
            },
            {"#s": "status"},
        )

    def _retry_later(self, outgoing: Outgoing, until: float) -> bool:
        """Leave the row pending, free for any relay from ``until`` on."""
        return self._owned_update(
            outgoing,
            "SET nextAttemptAt = :t, eventcount = :n REMOVE leaseOwner, leaseUntil",
            {":t": until, ":n": outgoing.event.eventcount},
        )

    def _renew(self, outgoing: Outgoing) -> bool:
        """Extend the lease before an effect that cannot be taken back (a dead letter)."""
        return self._owned_update(
            outgoing, "SET leaseUntil = :until", {":until": time.time() + self._lease_s}
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

    def oldest_pending_ms(self) -> float | None:
        """How long ago the oldest pending row was recorded, in ms (None when nothing is pending). A Pipe's
        row is never pending: how far the Pipe lags is the Pipe's to tell, not the relay's backlog."""
        page = self._dynamodb.query(
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": "pending"},
            ExpressionAttributeValues=to_item({":p": PENDING}),
            Limit=1,
        )
        items = page.get("Items", [])
        if not items:
            return None
        return round(max(0.0, time.time() - float(from_item(items[0])["createdAt"])) * 1000, 1)


def _heads_of_groups(rows: list[dict[str, Any]], seen_groups: set[str], now: float) -> list[dict[str, Any]]:
    """``rows`` (oldest first) without the later rows of a FIFO group seen before, and without a group's
    first row when it is not due or is leased (the whole group waits for it)."""
    kept = []
    for row in rows:
        group = row.get("group")
        if group is None:
            kept.append(row)
            continue
        if group in seen_groups:
            continue
        seen_groups.add(group)
        if float(row.get("nextAttemptAt", 0)) <= now and float(row.get("leaseUntil", 0)) < now:
            kept.append(row)
    return kept


def _pages(dynamodb: Any, query: dict[str, Any]) -> Iterable[dict[str, Any]]:
    while True:
        page = dynamodb.query(**query)
        yield from (from_item(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        query = query | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def events_about(dynamodb: Any, outbox_table: str, subject: str) -> list[dict[str, Any]]:
    """What this service recorded about ``subject`` (e.g. a ride id), oldest first: the ops timeline. A
    query of the subject index, so it costs that aggregate's rows, never the whole outbox."""
    kwargs: dict[str, Any] = {
        "TableName": outbox_table,
        "IndexName": SUBJECT_INDEX,
        "KeyConditionExpression": "subject = :s",
        "ExpressionAttributeValues": to_item({":s": subject}),
    }
    events = []
    for row in _pages(dynamodb, kwargs):
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
                "traceparent": event.traceparent,
                "tracestate": event.tracestate,
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
