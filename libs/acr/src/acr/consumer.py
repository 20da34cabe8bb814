"""The SQS consumer loop: long poll, batch, delete only what succeeded.

Poison messages (unparseable, unknown type, schema-invalid) go to the DLQ at once, by the consumer,
with their reason as message attributes, so they never block the queue; the queue's redrive policy
is only the backstop for crashes. Duplicates are acknowledged and counted, and so are stale updates.
An update that arrives before what it updates is parked: sent again with a delay, not redelivered
(so it burns no receives). Any other failure leaves the message for redelivery with a short backoff.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar

from acr import catalog
from acr.catalog.base import EventData
from acr.envelope import CloudEvent, InvalidEnvelope
from acr.faults import NO_FAULTS, Faults
from acr.logs import event_context
from acr.metrics import COUNTERS, Counters
from acr.unit_of_work import Conflict, Duplicate, UnitOfWork

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef


log = logging.getLogger(__name__)

MessageHandler = Callable[[CloudEvent, EventData], None]
MAX_PARKS = 30


class Park(Exception):
    """Not yet: what this message updates does not exist here yet. Try again a little later (a message
    parked ``MAX_PARKS`` times is an orphan: it goes to the DLQ)."""


class Wait(Park):
    """Not yet, and for as long as it takes: a condition that becomes true later (dispatch paused, no
    spare car yet). Parked again and again with a capped delay, never dead-lettered for waiting."""


class Stale(Exception):
    """This update is older than what the consumer already applied: acknowledge and drop it."""


class PoisonMessage(Exception):
    """A message no retry can fix."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def unwrap(body: str) -> CloudEvent:
    """The CloudEvent inside an SQS body: an EventBridge envelope's ``detail``, an SNS notification's
    ``Message``, or the raw structured event (SNS raw delivery)."""
    try:
        outer = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise PoisonMessage("unparseable", f"body is not JSON: {exc}") from exc
    if not isinstance(outer, dict):
        raise PoisonMessage("unparseable", "body is not a JSON object")
    if "detail-type" in outer and "detail" in outer:
        inner: Any = outer["detail"]
        raw = inner if isinstance(inner, str) else json.dumps(inner)
    elif outer.get("Type") == "Notification" and isinstance(outer.get("Message"), str):
        raw = outer["Message"]
    else:
        raw = body
    try:
        return CloudEvent.from_json(raw)
    except InvalidEnvelope as exc:
        raise PoisonMessage("invalid_envelope", str(exc)) from exc


def decode(body: str) -> tuple[CloudEvent, EventData]:
    """Unwrap and validate against the catalog; raises ``PoisonMessage``."""
    event = unwrap(body)
    try:
        return event, catalog.decode(event)
    except catalog.UnknownEventType as exc:
        raise PoisonMessage("unknown_type", str(exc)) from exc
    except catalog.SchemaInvalid as exc:
        raise PoisonMessage("schema_invalid", str(exc)) from exc


U = TypeVar("U", bound=UnitOfWork)
D = TypeVar("D", bound=EventData)
P = ParamSpec("P")
Handler: TypeAlias = Callable[[U, D, CloudEvent], None]
"""What handles one event type: stage the state change and the events it causes into the unit of work."""

CONFLICT_ATTEMPTS = 5


class Handlers(Generic[U]):
    """A consumer's handler table, ``{event type: handler(uow, data, event)}``, built with ``on`` so each
    handler's payload type, and what else it is given, are checked against the handler's signature."""

    def __init__(self) -> None:
        self._table: dict[type[EventData], Handler[U, Any]] = {}

    def on(
        self,
        event_type: type[D],
        handler: Callable[Concatenate[U, D, CloudEvent, P], None],
        /,
        *args: P.args,
        **collaborators: P.kwargs,
    ) -> Handlers[U]:
        """Handle ``event_type`` with ``handler(uow, data, event, *args, **collaborators)``: what a handler
        needs besides the unit of work (a gateway, the road network...) is given here, checked against
        the handler's own parameters."""
        self._table[event_type] = lambda uow, data, event: handler(uow, data, event, *args, **collaborators)
        return self

    def types(self) -> frozenset[type[EventData]]:
        return frozenset(self._table)

    def handler(self, data: EventData) -> Handler[U, Any]:
        """The handler of ``data``'s type; ``PoisonMessage`` when this consumer handles no such type."""
        found = self._table.get(type(data))
        if found is None:
            raise PoisonMessage("unexpected_type", f"this consumer handles no {type(data).__name__}")
        return found


def idempotent(
    unit_of_work: Callable[[], U], handlers: Handlers[U], attempts: int = CONFLICT_ATTEMPTS
) -> MessageHandler:
    """The kernel's consumer of one message: the handler's state, its events and the message's marker are
    staged into ONE unit of work and committed once. A second delivery raises ``Duplicate`` at commit.
    A lost race (``Conflict``: another writer changed the same state first) runs the handler again on a
    fresh unit of work, which reads the state as it is now."""

    def handle(event: CloudEvent, data: EventData) -> None:
        handler = handlers.handler(data)
        for attempt in range(1, attempts + 1):
            uow = unit_of_work()
            handler(uow, data, event)
            uow.mark_consumed(event)
            try:
                uow.commit()
                return
            except Conflict as conflict:
                if attempt == attempts:
                    raise
                COUNTERS.add("conflictsRetried")
                log.info(
                    "%s lost a race on %s (attempt %d): handling it again", event.type, conflict, attempt
                )

    return handle


@dataclass
class Received:
    message_id: str
    receipt: str
    body: str
    receive_count: int
    parked: int = 0


def _received(message: MessageTypeDef) -> Received:
    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
    parked_attribute = message.get("MessageAttributes", {}).get("parked")
    parked = parked_attribute.get("StringValue", "0") if parked_attribute else "0"
    return Received(
        message["MessageId"], message["ReceiptHandle"], message["Body"], int(receives), int(parked)
    )


class SqsConsumer:
    """Drains one queue with one handler."""

    def __init__(
        self,
        *,
        name: str,
        sqs: SQSClient,
        queue_url: str,
        dead_letter_queue_url: str,
        handler: MessageHandler,
        wait_s: int = 20,
        batch: int = 10,
        counters: Counters = COUNTERS,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.name = name
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dead_letter_queue_url
        self._handler = handler
        self._wait_s = wait_s
        self._batch = batch
        self._counters = counters
        self._faults = faults
        self._fifo = queue_url.endswith(".fifo")

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; survives emulator hiccups."""
        while not stop.is_set():
            try:
                self.poll_once(stop)
            except Exception:
                log.exception("consumer %s: poll failed", self.name)
                stop.wait(1.0)

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """Receive one batch, handle each message, delete the ones that are done. Returns messages seen.
        A batch that arrives after ``stop`` was set is handed back to the queue at once, unhandled."""
        messages = self._receive()
        if stop is not None and stop.is_set():
            self._release(messages)
            return 0
        done = [m for m in messages if self._process(m)]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(done)],
            )
        return len(messages)

    def _receive(self) -> list[Received]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch,
            WaitTimeSeconds=self._wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["parked"],
        )
        return [_received(m) for m in response.get("Messages", [])]

    def _release(self, messages: list[Received]) -> None:
        """Make received messages visible again now (instead of after the visibility timeout)."""
        if messages:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt, "VisibilityTimeout": 0}
                    for i, m in enumerate(messages)
                ],
            )

    def _process(self, message: Received) -> bool:
        """True when the message is finished with (handled, duplicate or dead-lettered)."""
        try:
            event, data = decode(message.body)
        except PoisonMessage as poison:
            self._dead_letter(message, poison)
            return True
        with event_context(
            event_id=event.id, ride_id=getattr(data, "ride_id", None), traceparent=event.traceparent
        ):
            if self._injected_before(message, event):
                return False
            done = self._handle(message, event, data)
            return done and not self._injected_after(message, event)

    def _handle(self, message: Received, event: CloudEvent, data: EventData) -> bool:
        try:
            self._handler(event, data)
        except PoisonMessage as poison:
            self._dead_letter(message, poison)
            return True
        except Duplicate:
            self._counters.add("duplicatesDiscarded")
            log.info("duplicate %s (eventcount %s) discarded", event.type, event.eventcount)
            return True
        except Stale:
            self._counters.add("staleDropped")
            log.info("stale %s (sequence %s) dropped", event.type, event.sequence)
            return True
        except Park as park:
            return self._park(message, str(park), bounded=not isinstance(park, Wait))
        except Exception:
            log.exception("handling %s failed (receive %d); will retry", event.type, message.receive_count)
            self._backoff(message)
            return False
        self._counters.add("consumed")
        return True

    def _park(self, message: Received, reason: str, *, bounded: bool) -> bool:
        """Send the message again with a delay (a FIFO queue keeps its order instead: redeliver it)."""
        if bounded and message.parked >= MAX_PARKS:
            self._dead_letter(message, PoisonMessage("orphan_update", f"parked {MAX_PARKS} times: {reason}"))
            return True
        if self._fifo:
            self._backoff(message)
            return False
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=message.body,
            DelaySeconds=min(2 + 2 * message.parked, 30),
            MessageAttributes={"parked": {"DataType": "Number", "StringValue": str(message.parked + 1)}},
        )
        self._counters.add("parked")
        log.info("parked (%d): %s", message.parked + 1, reason)
        return True

    # --- injected faults (no-ops unless ACR_FAULTS names them) ------------------------------------------
    def _injected_before(self, message: Received, event: CloudEvent) -> bool:
        """True when the message is abandoned before it is handled (a crash, or held back to reorder)."""
        if self._faults.hit("consume.crash_before_ack", f"crash-before:{event.id}"):
            self._backoff(message)
            return True
        if not self._fifo and self._faults.hit("deliver.reorder", f"reorder:{event.id}"):
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message.body, DelaySeconds=3)
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message.receipt)
            return True
        return False

    def _injected_after(self, message: Received, event: CloudEvent) -> bool:
        """True when a handled message is not acknowledged (a crash after the commit); may deliver a copy."""
        if self._faults.hit("deliver.duplicate", f"duplicate:{event.id}"):
            kwargs: dict[str, Any] = {"QueueUrl": self._queue_url, "MessageBody": message.body}
            if self._fifo:
                kwargs |= {
                    "MessageGroupId": event.subject or event.id,
                    "MessageDeduplicationId": f"dup-{event.id}",
                }
            self._sqs.send_message(**kwargs)
        if self._faults.hit("consume.crash_after_commit", f"crash-after:{event.id}"):
            self._backoff(message)
            return True
        return False

    def _backoff(self, message: Received) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=message.receipt,
                VisibilityTimeout=min(2**message.receive_count, 30),
            )
        except Exception:  # the visibility timeout still brings it back
            log.warning("could not shorten visibility of %s", message.message_id)

    def _dead_letter(self, message: Received, poison: PoisonMessage) -> None:
        log.error("consumer %s: poison message %s sent to DLQ: %s", self.name, message.message_id, poison)
        kwargs: dict[str, Any] = {
            "QueueUrl": self._dlq_url,
            "MessageBody": message.body,
            "MessageAttributes": {
                "reason": {"DataType": "String", "StringValue": poison.reason},
                "detail": {"DataType": "String", "StringValue": poison.detail[:1000] or "-"},
                "sourceQueue": {"DataType": "String", "StringValue": self._queue_url.rsplit("/", 1)[-1]},
            },
        }
        if self._fifo:
            kwargs["MessageGroupId"] = "poison"
            kwargs["MessageDeduplicationId"] = message.message_id
        self._sqs.send_message(**kwargs)
        self._counters.add("deadLettered")
