"""The relay outlasts any outage: a retryable failure waits on its row (never the DLQ), claims skip rows that
are not due, a relay finishes only rows it still holds, and every send of an event counts one more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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

from acr import relay
from acr.catalog.base import EventData
from acr.catalog.fleet import NoCarAvailable
from acr.catalog.ride import RideUpdated
from acr.channels import FaultyChannel, TransportError
from acr.dynamo import DynamoUnitOfWork
from acr.envelope import CloudEvent
from acr.faults import Faults
from acr.metrics import Counters
from acr.relay import DEFAULT_BACKOFF, Relay, redrive
from acr.unit_of_work import Outgoing

clock, dynamodb = relay_clock, outbox_dynamodb  # the fixtures under the names the tests use


def _fleet(i: int) -> NoCarAvailable:
    return NoCarAvailable(ride_id=f"r{i}", reason="x")


def _record(dynamodb: Dynamo, clock: Clock, payloads: Sequence[EventData]) -> list[CloudEvent]:
    """Commit one event per payload to the outbox, a millisecond apart, as a service's unit of work does."""
    uow = DynamoUnitOfWork(dynamodb, OUTBOX)
    for data in payloads:
        uow.record(data, subject=getattr(data, "ride_id", None))
        clock.advance(0.001)
    uow.commit()
    return [o.event for o in uow.recorded]


def _relay(dynamodb: Any, sqs: Sqs, bus: Any, topic: Any = None, counters: Counters | None = None) -> Relay:
    return Relay(
        dynamodb=dynamodb,
        sqs=sqs,
        outbox_table=OUTBOX,
        dead_letter_queue_url=PRODUCER_DLQ,
        channels={"bus": bus, "topic": topic or ScriptedChannel()},
        lease_s=30,
        poll_s=5,
        counters=counters or Counters(),
    )


def _row(dynamodb: Dynamo, event: CloudEvent) -> dict[str, Any]:
    row = dynamodb.row(OUTBOX, eventId=event.id)
    assert row is not None
    return row


def _sends(channels: Sequence[ScriptedChannel], event: CloudEvent) -> list[int]:
    """The eventcount of every send of ``event``, in the order they happened."""
    return [o.event.eventcount for c in channels for call in c.calls for o in call if o.event.id == event.id]


class Outage(ScriptedChannel):
    """Answers ``code`` for every entry until ``ends`` (on ``clock``), then accepts; ``accepted`` is what
    went out, in order."""

    def __init__(self, clock: Clock, ends: float, code: str = "ThrottlingException") -> None:
        super().__init__()
        self.clock, self.ends, self.code = clock, ends, code
        self.accepted: list[Outgoing] = []
        self.refused = 0

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        self.calls.append(list(batch))
        if self.clock.now < self.ends:
            self.refused += 1
            return [self.code] * len(batch)
        self.accepted += batch
        return [None] * len(batch)


# --- an outage ----------------------------------------------------------------------------------------------
def test_a_throttling_outage_of_minutes_leaves_rows_pending_then_publishes_them_all_in_order(
    dynamodb: Dynamo, clock: Clock
) -> None:
    outage_s = 5 * 60
    start = clock.now
    bus = Outage(clock, ends=start + outage_s)
    sqs = Sqs()
    sender = _relay(dynamodb, sqs, bus)
    recorded = _record(dynamodb, clock, [_fleet(i) for i in range(12)])  # more than a batch
    next_record, ages = start + 30, []
    while clock.now < start + outage_s + 120:
        if clock.now >= next_record and clock.now < start + outage_s:  # the service keeps recording
            recorded += _record(dynamodb, clock, [_fleet(len(recorded))])
            next_record += 30
        if sender.drain_once() == 0:
            ages.append((clock.now - start, sender.oldest_pending_ms()))
            clock.advance(max(sender.idle_s(), 0.01))

    assert [o.event.id for o in bus.accepted] == [e.id for e in recorded]  # all of them, once, in order
    assert sqs.queues.get(PRODUCER_DLQ) is None
    assert all(_row(dynamodb, e)["status"] == "SENT" for e in recorded)
    assert sender.oldest_pending_ms() is None
    during = [age for at, age in ages if 60 < at < outage_s]
    assert during and all(age is not None and age >= 60_000 for age in during)  # the backlog's age shows
    assert 10 < bus.refused < 40  # the backoff spaced the attempts (up to 30 s apart)


def test_an_eventbridge_throttle_window_holds_rows_until_it_closes_and_nothing_is_dead_lettered(
    dynamodb: Dynamo, clock: Clock
) -> None:
    faults = Faults(clock=clock.time)
    window = faults.open("eventbridge.throttle", 1.0, 60)
    inner_bus, inner_topic = ScriptedChannel(), ScriptedChannel()
    sqs = Sqs()
    sender = _relay(
        dynamodb, sqs, FaultyChannel(inner_bus, faults, "bus"), FaultyChannel(inner_topic, faults, "topic")
    )
    update = RideUpdated(ride_id="r9", rider_id="rdr_1", version=1, ride={"requestedAt": "t"})
    fleet_events = _record(dynamodb, clock, [_fleet(i) for i in range(3)])
    (topic_event,) = _record(dynamodb, clock, [update])

    sender.drain_once()
    assert inner_topic.sent_ids() == [topic_event.id]  # the window is on EventBridge only
    while clock.now < window.until:
        assert inner_bus.calls == [] and sender.oldest_pending_ms() is not None
        sender.drain_once()
        clock.advance(max(sender.idle_s(), 0.01))
    # once it closes, each row goes out at its next attempt: at most one longest backoff later
    while not inner_bus.sent_ids() and clock.now <= window.until + DEFAULT_BACKOFF.max_s:
        sender.drain_once()
        clock.advance(max(sender.idle_s(), 0.01))
    assert inner_bus.sent_ids() == [e.id for e in fleet_events]
    assert sqs.queues.get(PRODUCER_DLQ) is None and faults.injected["eventbridge.throttle"] >= 3
    assert faults.windows() == []


def test_an_sns_failure_window_fails_only_the_topic(dynamodb: Dynamo, clock: Clock) -> None:
    faults = Faults(clock=clock.time)
    faults.open("sns.failure", 1.0, 30)
    inner_bus, inner_topic = ScriptedChannel(), ScriptedChannel()
    sender = _relay(
        dynamodb, Sqs(), FaultyChannel(inner_bus, faults, "bus"), FaultyChannel(inner_topic, faults, "topic")
    )
    update = RideUpdated(ride_id="r9", rider_id="rdr_1", version=1, ride={"requestedAt": "t"})
    (fleet_event, topic_event) = _record(dynamodb, clock, [_fleet(1), update])
    sender.drain_once()
    assert inner_bus.sent_ids() == [fleet_event.id] and inner_topic.calls == []
    assert "nextAttemptAt" in _row(dynamodb, topic_event)
    clock.advance(31)
    sender.drain_once()
    assert inner_topic.sent_ids() == [topic_event.id]


def _versions(ride_id: str, *versions: int) -> list[RideUpdated]:
    return [
        RideUpdated(ride_id=ride_id, rider_id="rdr_1", version=v, ride={"requestedAt": "t"}) for v in versions
    ]


def test_a_fifo_groups_rows_go_out_one_at_a_time_oldest_first_even_when_one_is_retried(
    dynamodb: Dynamo, clock: Clock
) -> None:
    v1, v2, other = _record(dynamodb, clock, [*_versions("r1", 1, 2), *_versions("r2", 1)])
    topic = ScriptedChannel([["InternalFailure", None]])  # the first batch: r1 v1 fails, r2 v1 passes
    sender = _relay(dynamodb, Sqs(), ScriptedChannel(), topic)

    sender.drain_once()
    assert [[o.event.id for o in call] for call in topic.calls] == [[v1.id, other.id]]  # one row per group
    assert sender.drain_once() == 0  # r1 v2 waits behind v1, which backs off
    assert "nextAttemptAt" in _row(dynamodb, v1) and _row(dynamodb, v2)["pending"] == "P"

    clock.advance(_row(dynamodb, v1)["nextAttemptAt"] - clock.now)
    sender.drain_once()
    sender.drain_once()
    assert topic.sent_ids() == [v1.id, other.id, v1.id, v2.id]  # v2 never overtakes v1
    assert _row(dynamodb, v2)["status"] == "SENT"


def test_a_fifo_group_waits_while_another_relay_holds_its_oldest_row(dynamodb: Dynamo, clock: Clock) -> None:
    v1, v2 = _record(dynamodb, clock, _versions("r1", 1, 2))
    holder = _relay(dynamodb, Sqs(), ScriptedChannel(), ScriptedChannel())
    assert holder._claim(_row(dynamodb, v1)) is not None  # another relay took v1 and has not sent it yet
    topic = ScriptedChannel()
    assert _relay(dynamodb, Sqs(), ScriptedChannel(), topic).drain_once() == 0
    assert topic.calls == [] and _row(dynamodb, v2)["pending"] == "P"


# --- claims skip what is not due ----------------------------------------------------------------------------
class CountingDynamo(Dynamo):
    """Counts conditional updates (claims, finishes, backoffs)."""

    def __init__(self, inner: Dynamo) -> None:
        super().__init__(inner._client)
        self.updates = 0

    def update_item(self, **kwargs: Any) -> Any:
        self.updates += 1
        return self._client.update_item(**kwargs)


def test_a_row_backing_off_is_skipped_by_the_query_and_rows_behind_it_still_go_out(
    dynamodb: Dynamo, clock: Clock
) -> None:
    counting = CountingDynamo(dynamodb)
    first, second = _record(dynamodb, clock, [_fleet(0), _fleet(1)])
    bus = ScriptedChannel([["InternalFailure", None]])  # the bus answers: only the first entry fails
    sender = _relay(counting, Sqs(), bus)
    sender.drain_once()
    row = _row(dynamodb, first)
    assert row["pending"] == "P" and row["nextAttemptAt"] > clock.now and "leaseOwner" not in row

    counting.updates = 0
    assert sender.drain_once() == 0 and counting.updates == 0  # no claim tried and refused, one by one
    (third,) = _record(dynamodb, clock, [_fleet(2)])
    assert sender.drain_once() == 1 and bus.calls[-1][0].event.id == third.id  # newer, but due
    clock.advance(row["nextAttemptAt"] - clock.now)
    assert sender.drain_once() == 1 and bus.calls[-1][0].event.id == first.id
    assert _row(dynamodb, first)["status"] == "SENT" and _row(dynamodb, second)["status"] == "SENT"


def test_a_destination_that_answered_nothing_gets_no_newer_rows_before_the_next_attempt(
    dynamodb: Dynamo, clock: Clock
) -> None:
    events = _record(dynamodb, clock, [_fleet(i) for i in range(3)])
    bus = ScriptedChannel([["ThrottlingException"] * 3])
    sender = _relay(dynamodb, Sqs(), bus)
    sender.drain_once()
    events += _record(dynamodb, clock, [_fleet(3)])
    assert sender.drain_once() == 0 and len(bus.calls) == 1  # held back: not sent, not even claimed
    assert "nextAttemptAt" not in _row(dynamodb, events[3]) and "claims" not in _row(dynamodb, events[3])
    clock.advance(sender.idle_s())
    sender.drain_once()
    assert [o.event.id for o in bus.calls[-1]] == [e.id for e in events]  # behind the older ones
    assert [o.event.eventcount for o in bus.calls[-1]] == [2, 2, 2, 1]


def test_a_backlog_held_back_on_a_throttled_bus_does_not_starve_the_topic(
    dynamodb: Dynamo, clock: Clock
) -> None:
    _record(dynamodb, clock, [_fleet(i) for i in range(60)])  # more than a round's limit
    update = RideUpdated(ride_id="r9", rider_id="rdr_1", version=1, ride={"requestedAt": "t"})
    (topic_event,) = _record(dynamodb, clock, [update])
    bus, topic = Outage(clock, ends=clock.now + 600), ScriptedChannel()
    sender = _relay(dynamodb, Sqs(), bus, topic)
    sender.drain_once()  # the 50 oldest rows: all for the bus, which answers nothing
    sender.drain_once()
    assert topic.sent_ids() == [topic_event.id] and bus.refused == 1


def test_the_idle_wait_is_the_sooner_of_the_poll_interval_and_the_next_attempt(
    dynamodb: Dynamo, clock: Clock
) -> None:
    sender = _relay(dynamodb, Sqs(), ScriptedChannel([["ThrottlingException"]]))
    assert sender.idle_s() == 5
    (event,) = _record(dynamodb, clock, [_fleet(0)])
    sender.drain_once()
    wait = _row(dynamodb, event)["nextAttemptAt"] - clock.now
    assert 0 < wait < 5 and sender.idle_s() == pytest.approx(wait)
    clock.advance(wait)
    assert sender.idle_s() == 0
    assert sender.idle_s() == 5  # that attempt is over: back to polling


def test_the_oldest_pending_row_age_is_reported(dynamodb: Dynamo, clock: Clock) -> None:
    sender = _relay(dynamodb, Sqs(), ScriptedChannel([["ThrottlingException"] * 2]))
    assert sender.oldest_pending_ms() is None
    _record(dynamodb, clock, [_fleet(0)])
    clock.advance(5)
    _record(dynamodb, clock, [_fleet(1)])
    assert sender.oldest_pending_ms() == pytest.approx(5001, abs=1)
    for _ in range(3):
        sender.drain_once()
        clock.advance(max(sender.idle_s(), 0.01))
    assert sender.oldest_pending_ms() is None


# --- leases honoured end to end -----------------------------------------------------------------------------
class TakenOver(ScriptedChannel):
    """While relay A's call is out, ``meanwhile`` runs (A's lease runs out, relay B takes the row); then
    the call answers ``code`` for every entry."""

    def __init__(self, code: str | None, meanwhile: Callable[[], None]) -> None:
        super().__init__()
        self.code, self.meanwhile = code, meanwhile

    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        self.calls.append(list(batch))
        self.meanwhile()
        return [self.code] * len(batch)


class Dies(ScriptedChannel):
    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        self.calls.append(list(batch))
        raise RuntimeError("relay B died holding the row")


@pytest.mark.parametrize("answer", [None, "ThrottlingException", "ValidationException"])
@pytest.mark.parametrize("b_finishes", [True, False], ids=["B-finished", "B-holds-it"])
def test_a_relay_that_loses_its_lease_mid_round_leaves_the_new_owners_work_alone(
    dynamodb: Dynamo, clock: Clock, answer: str | None, b_finishes: bool
) -> None:
    (event,) = _record(dynamodb, clock, [_fleet(0)])
    sqs, counters, after_b = Sqs(), Counters(), {}
    b_channel = ScriptedChannel() if b_finishes else Dies()

    def lease_runs_out_and_b_takes_over() -> None:
        clock.advance(31)
        try:
            _relay(dynamodb, sqs, b_channel).drain_once()
        except RuntimeError:
            pass
        after_b.update(_row(dynamodb, event))

    a = _relay(dynamodb, sqs, TakenOver(answer, lease_runs_out_and_b_takes_over), counters=counters)
    a.drain_once()

    assert b_channel.calls[0][0].event.eventcount == 2  # B's send counted one more than A's
    assert _row(dynamodb, event) == after_b  # A's outcome (sent, retry or dead) changed nothing
    assert sqs.queues.get(PRODUCER_DLQ) is None  # not even a dead letter from A
    assert counters.get("leaseLost") == 1
    assert (after_b.get("status"), after_b.get("eventcount")) == (("SENT", 2) if b_finishes else (None, None))


# --- eventcount only grows ----------------------------------------------------------------------------------
class SendsThenDies(ScriptedChannel):
    def send(self, batch: Sequence[Outgoing]) -> list[str | None]:
        super().send(batch)
        raise RuntimeError("relay died after PutEvents, before marking the row")


def test_eventcount_only_grows_across_retries_lost_acks_lease_takeovers_dead_letters_and_redrives(
    dynamodb: Dynamo, clock: Clock
) -> None:
    (event,) = _record(dynamodb, clock, [_fleet(0)])
    sqs = Sqs()
    first = ScriptedChannel([TransportError("lost ack"), ["ThrottlingException"]])
    dying = SendsThenDies()
    second = ScriptedChannel([["InternalFailure"], ["ValidationException"]])
    third = ScriptedChannel()

    a = _relay(dynamodb, sqs, first)
    for _ in range(2):
        a.drain_once()
        clock.advance(a.idle_s())
    with pytest.raises(RuntimeError):
        _relay(dynamodb, sqs, dying).drain_once()  # a relay restarted mid-backoff sends, then dies
    clock.advance(31)
    b = _relay(dynamodb, sqs, second)
    for _ in range(2):
        b.drain_once()
        clock.advance(b.idle_s())
    assert _row(dynamodb, event)["status"] == "DEAD"
    assert redrive(sqs=sqs, dynamodb=dynamodb, dead_letter_queue_url=PRODUCER_DLQ, outbox_table=OUTBOX) == 1
    _relay(dynamodb, sqs, third).drain_once()

    counts = _sends([first, dying, second, third], event)
    assert counts == [1, 2, 3, 4, 5, 6]
    assert _row(dynamodb, event)["eventcount"] == 6 and _row(dynamodb, event)["status"] == "SENT"
    assert relay.events_about(dynamodb, OUTBOX, "r0")[0]["eventcount"] == 6
