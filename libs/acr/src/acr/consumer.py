"""The SQS consumer loop: long poll, batch, delete only what succeeded.

Poison messages (unparseable, unknown type, schema-invalid, or from a source that is not the type's
producer) go to the DLQ at once, by the consumer, with their reason as message attributes, so they never
block the queue; the queue's redrive policy is only the backstop for crashes. Duplicates are acknowledged
and counted, and so are stale updates and expired messages of a discardable type (``EventSpec.ttl_s``).
An update that arrives before what it updates is parked without burning receives: on a standard queue it
is sent again with a delay (and the original deleted); on a FIFO queue it is held in memory, invisible,
with the messages of its group that came behind it, and tried again after the same delay, so the group
keeps its order. Any other failure leaves the message for redelivery with a short backoff.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar

from acr import catalog, tracing
from acr.catalog.base import EventData
from acr.envelope import CloudEvent, InvalidEnvelope
from acr.faults import NO_FAULTS, Faults, InjectedFault
from acr.logs import event_context
from acr.metrics import COUNTERS, Counters
from acr.unit_of_work import Conflict, Duplicate, UnitOfWork

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef


log = logging.getLogger(__name__)

MessageHandler = Callable[[CloudEvent, EventData], None]
MAX_PARKS = 30
HOLD_MARGIN_S = 30  # a held FIFO message stays invisible this long past its next try


def park_delay(parked: int) -> int:
    """Seconds before a message parked ``parked`` times already is tried again: 2, 4, ... up to 30."""
    return min(2 + 2 * parked, 30)


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


UNTRUSTED_SOURCE = "untrusted_source"


def unwrap(body: str) -> CloudEvent:
    """The CloudEvent inside an SQS body: an EventBridge envelope's ``detail``, an SNS notification's
    ``Message``, or the raw structured event (SNS raw delivery). An EventBridge envelope must name the
    event's own source: the bus's policy vouches for the envelope's, not for what its detail says."""
    try:
        outer = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise PoisonMessage("unparseable", f"body is not JSON: {exc}") from exc
    if not isinstance(outer, dict):
        raise PoisonMessage("unparseable", "body is not a JSON object")
    envelope_source: Any = None
    if "detail-type" in outer and "detail" in outer:
        inner: Any = outer["detail"]
        raw = inner if isinstance(inner, str) else json.dumps(inner)
        envelope_source = outer.get("source")
    elif outer.get("Type") == "Notification" and isinstance(outer.get("Message"), str):
        raw = outer["Message"]
    else:
        raw = body
    try:
        event = CloudEvent.from_json(raw)
    except InvalidEnvelope as exc:
        raise PoisonMessage("invalid_envelope", str(exc)) from exc
    if envelope_source is not None and envelope_source != event.source:
        raise PoisonMessage(UNTRUSTED_SOURCE, f"put on the bus as {envelope_source!r}, says {event.source!r}")
    return event


def decode(body: str) -> tuple[CloudEvent, EventData]:
    """Unwrap, validate against the catalog and check that the source is the type's producer; raises
    ``PoisonMessage``."""
    event = unwrap(body)
    try:
        data = catalog.decode(event)
    except catalog.UnknownEventType as exc:
        raise PoisonMessage("unknown_type", str(exc)) from exc
    except catalog.SchemaInvalid as exc:
        raise PoisonMessage("schema_invalid", str(exc)) from exc
    producer = catalog.producer_of(event.type)
    if event.source != producer:
        raise PoisonMessage(
            UNTRUSTED_SOURCE, f"{event.type} is published by {producer}, not {event.source!r}"
        )
    return event, data


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
    unit_of_work: Callable[[], U],
    handlers: Handlers[U],
    attempts: int = CONFLICT_ATTEMPTS,
    faults: Faults = NO_FAULTS,
    counters: Counters = COUNTERS,
) -> MessageHandler:
    """The kernel's consumer of one message: the handler's state, its events and the message's marker are
    staged into ONE unit of work and committed once. A second delivery raises ``Duplicate`` at commit.
    A lost race (``Conflict``: another writer changed the same state first) runs the handler again on a
    fresh unit of work, which reads the state as it is now. ``faults`` may crash the process before the
    commit or fail the commit as a lost race (``uow.*``), at most a few times per message. Each commit is
    one saga step: its latency, from the causing event's time, goes to ``counters`` by event type."""

    def handle(event: CloudEvent, data: EventData) -> None:
        handler = handlers.handler(data)
        for attempt in range(1, attempts + 1):
            uow = unit_of_work()
            handler(uow, data, event)
            uow.mark_consumed(event)
            try:
                _commit(uow, event, faults)
            except Conflict as conflict:
                if attempt == attempts:
                    raise
                counters.add("conflictsRetried")
                log.info(
                    "%s lost a race on %s (attempt %d): handling it again", event.type, conflict, attempt
                )
                continue
            counters.saga_step(event.type, time.time() - event.time.timestamp())
            return

    return handle


def _commit(uow: UnitOfWork, event: CloudEvent, faults: Faults) -> None:
    """Commit ``uow``, unless an injected fault says the process died first (nothing is written, the
    message comes again) or that another writer won (``Conflict``: the kernel handles it again)."""
    if faults.hit("uow.crash_before_commit", f"uow-crash:{event.id}"):
        raise InjectedFault("the process died after the handler staged its writes, before the commit")
    if faults.hit("uow.conflict", f"uow-conflict:{event.id}"):
        raise Conflict(["injected"])
    uow.commit()


@dataclass
class Received:
    message_id: str
    receipt: str
    body: str
    receive_count: int
    parked: int = 0
    group: str = ""


@dataclass
class HeldGroup:
    """FIFO messages of one group held in memory: the parked one first, then those received behind it."""

    messages: list[Received]
    due: float  # ``time.monotonic()`` of the next try
    refreshed: bool = False  # their visibility covers the next try


def _received(message: MessageTypeDef) -> Received:
    attributes = message.get("Attributes", {})
    parked_attribute = message.get("MessageAttributes", {}).get("parked")
    parked = parked_attribute.get("StringValue", "0") if parked_attribute else "0"
    return Received(
        message["MessageId"],
        message["ReceiptHandle"],
        message["Body"],
        int(attributes.get("ApproximateReceiveCount", "1")),
        int(parked),
        attributes.get("MessageGroupId") or message["MessageId"],
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
        self._held: dict[str, HeldGroup] = {}  # FIFO only: parked groups, by message group id

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; survives emulator hiccups. Held messages are handed back."""
        while not stop.is_set():
            try:
                self.poll_once(stop)
            except Exception:
                log.exception("consumer %s: poll failed", self.name)
                stop.wait(1.0)
        try:
            self._release([m for held in self._held.values() for m in held.messages])
        except Exception:  # their visibility runs out by itself
            log.warning("consumer %s: could not hand back its held messages", self.name)
        self._held.clear()

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """Try the held groups that are due, receive one batch, handle each message, delete the ones that
        are done. Returns messages seen. A batch that arrives after ``stop`` was set is handed back to the
        queue at once, unhandled."""
        retried, done = self._retry_held()
        messages = self._receive()
        if stop is not None and stop.is_set():
            self._release(messages)
            messages = []
        done += self._process_batch(messages)
        self._keep_held_invisible()
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(done)],
            )
        return retried + len(messages)

    def _receive(self) -> list[Received]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch,
            WaitTimeSeconds=self._wait(),
            MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
            MessageAttributeNames=["parked"],
        )
        return [_received(m) for m in response.get("Messages", [])]

    def _wait(self) -> int:
        """The long poll: ``wait_s``, or less when a held group is due sooner."""
        if not self._held:
            return self._wait_s
        soonest = min(held.due for held in self._held.values()) - time.monotonic()
        return max(0, min(self._wait_s, math.ceil(soonest)))

    def _release(self, messages: list[Received]) -> None:
        """Make received messages visible again now (instead of after the visibility timeout)."""
        self._set_visibility(messages, 0)

    def _set_visibility(self, messages: list[Received], timeout: int) -> bool:
        """Set the visibility timeout of ``messages``, 10 to a request; False when SQS refused any."""
        refused = False
        for start in range(0, len(messages), 10):
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt, "VisibilityTimeout": timeout}
                    for i, m in enumerate(messages[start : start + 10])
                ],
            )
            refused = refused or bool(response.get("Failed"))
        return not refused

    def _process_batch(self, messages: list[Received]) -> list[Received]:
        """Handle each message; returns those that are done. On a FIFO queue, a message whose group waits
        (held, or failed earlier in this batch) is not handled before the message it came behind."""
        done: list[Received] = []
        failed: set[str] = set()
        for message in messages:
            if self._fifo and self._queued_behind(message, failed):
                continue
            if self._process(message):
                done.append(message)
            elif self._fifo and message.group not in self._held:
                failed.add(message.group)
        return done

    def _queued_behind(self, message: Received, failed: set[str]) -> bool:
        """True when ``message`` waits behind an earlier message of its FIFO group: held with a parked
        one, or handed back (it comes again after the failed one)."""
        held = self._held.get(message.group)
        if held is not None:
            _hold_behind(held, message)
            return True
        if message.group in failed:
            self._release([message])
            return True
        return False

    def _process(self, message: Received) -> bool:
        """True when the message is finished with (handled, duplicate or dead-lettered)."""
        try:
            event, data = decode(message.body)
        except PoisonMessage as poison:
            if poison.reason == UNTRUSTED_SOURCE:
                self._counters.add("untrustedSources")
            self._dead_letter(message, poison)
            return True
        ride_id = getattr(data, "ride_id", None)
        with (
            tracing.consuming(
                event_type=event.type,
                event_id=event.id,
                traceparent=event.traceparent,
                tracestate=event.tracestate,
                ride_id=ride_id,
                destination=self.name,
            ),
            event_context(event_id=event.id, ride_id=ride_id),
        ):
            if self._injected_before(message, event):
                return False
            if self._expired(event):
                return True
            done = self._handle(message, event, data)
            return done and not self._injected_after(message, event)

    def _expired(self, event: CloudEvent) -> bool:
        """True when ``event`` outlived its type's time-to-live and its type is discardable: acknowledged
        unhandled. An expired event of any other type is handled all the same (it changes state: dropping it
        would lose a step), and counted as late."""
        spec = catalog.CATALOG[event.type]
        age_s = time.time() - event.time.timestamp()
        if age_s <= spec.ttl_s:
            return False
        if spec.discardable:
            self._counters.expired(event.type)
            log.info("expired %s discarded: %.1f s old, time-to-live %d s", event.type, age_s, spec.ttl_s)
            return True
        self._counters.add("lateApplied")
        log.info("late %s applied: %.1f s old, past its time-to-live %d s", event.type, age_s, spec.ttl_s)
        return False

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
        except InjectedFault as fault:
            log.info("injected fault on %s: %s; it comes again", event.type, fault)
            self._backoff(message)
            return False
        except Exception:
            log.exception("handling %s failed (receive %d); will retry", event.type, message.receive_count)
            self._backoff(message)
            return False
        self._counters.add("consumed")
        return True

    def _park(self, message: Received, reason: str, *, bounded: bool) -> bool:
        """Try the message again after ``park_delay``: sent again with that delay (standard queue: True,
        the original is done), or held in memory with its group (FIFO queue: False, not done yet)."""
        if bounded and message.parked >= MAX_PARKS:
            self._dead_letter(message, PoisonMessage("orphan_update", f"parked {MAX_PARKS} times: {reason}"))
            return True
        delay = park_delay(message.parked)
        if self._fifo:
            message.parked += 1
            self._held[message.group] = HeldGroup([message], time.monotonic() + delay)
        else:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message.body,
                DelaySeconds=delay,
                MessageAttributes={"parked": {"DataType": "Number", "StringValue": str(message.parked + 1)}},
            )
        self._counters.add("parked")
        log.info("parked (%d) for %d s: %s", message.parked + (0 if self._fifo else 1), delay, reason)
        return not self._fifo

    # --- FIFO groups held in memory -------------------------------------------------------------------------
    def _retry_held(self) -> tuple[int, list[Received]]:
        """Handle the held groups that are due, each in its order. Returns how many messages were tried,
        and those that are done."""
        now = time.monotonic()
        tried, done = 0, []
        for group in [g for g, held in self._held.items() if held.due <= now]:
            count, finished = self._retry_group(group, self._held.pop(group))
            tried += count
            done += finished
        return tried, done

    def _retry_group(self, group: str, held: HeldGroup) -> tuple[int, list[Received]]:
        """Handle ``held``'s messages in order until one is not done: parked again, the rest stays held
        behind it; failed, the rest is handed back to come after it."""
        done: list[Received] = []
        for i, message in enumerate(held.messages):
            if self._process(message):
                done.append(message)
                continue
            rest = held.messages[i + 1 :]
            if group in self._held:
                self._held[group].messages += rest
            else:
                self._release(rest)
            return i + 1, done
        return len(held.messages), done

    def _keep_held_invisible(self) -> None:
        """Extend the visibility of every held group changed since the last call past its next try; a
        group whose extension is refused is forgotten (its messages come back by themselves, in order)."""
        for group, held in list(self._held.items()):
            if held.refreshed:
                continue
            timeout = math.ceil(held.due - time.monotonic()) + HOLD_MARGIN_S
            try:
                refused = not self._set_visibility(held.messages, timeout)
            except Exception:
                refused = True
            if refused:
                log.warning("consumer %s: could not keep group %s held; it comes back", self.name, group)
                del self._held[group]
            else:
                held.refreshed = True

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
        self._counters.dead_lettered(poison.reason)


def _hold_behind(held: HeldGroup, message: Received) -> None:
    """Queue ``message`` behind ``held``'s messages (one that came back, its visibility run out, takes
    its new receipt in its place)."""
    for i, existing in enumerate(held.messages):
        if existing.message_id == message.message_id:
            held.messages[i] = replace(existing, receipt=message.receipt, receive_count=message.receive_count)
            break
    else:
        held.messages.append(message)
    held.refreshed = False
