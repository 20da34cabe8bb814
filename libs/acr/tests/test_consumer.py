"""The SQS consumer loop: delete what is done, dead-letter poison, acknowledge duplicates, and stop."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from acr import catalog
from acr.catalog.base import ETA_TTL_S, EventData, EventSpec
from acr.catalog.fleet import NoCarAvailable
from acr.catalog.monitoring import RideEtaUpdated
from acr.consumer import SqsConsumer
from acr.envelope import CloudEvent
from acr.metrics import Counters
from acr.unit_of_work import Duplicate
from acr_testkit.sqs import FakeSqs

QUEUE, DLQ = "q", "q-dlq"


def _eventbridge_body(event: CloudEvent) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "eb-1",
            "detail-type": event.type,
            "source": event.source,
            "detail": json.loads(event.to_json()),
        }
    )


def _event() -> CloudEvent:
    return catalog.record(NoCarAvailable(ride_id="ride_1", reason="x"), subject="ride_1")


def _consumer(sqs: FakeSqs, handler, counters: Counters) -> SqsConsumer:  # type: ignore[no-untyped-def]
    return SqsConsumer(
        name="q",
        sqs=sqs,
        queue_url=QUEUE,
        dead_letter_queue_url=DLQ,
        handler=handler,
        wait_s=0,
        counters=counters,
    )


def test_handled_messages_are_deleted_and_failures_stay_for_redelivery() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []

    def handler(event: CloudEvent, data: EventData) -> None:
        seen.append(data)
        if len(seen) == 2:
            raise RuntimeError("emulator hiccup")

    sqs.put(QUEUE, _eventbridge_body(_event()))
    sqs.put(QUEUE, _eventbridge_body(_event()))
    _consumer(sqs, handler, counters).poll_once()
    assert len(sqs.queues[QUEUE]) == 1
    assert sqs.visibility == {"rh-m2": 2}
    assert counters.get("consumed") == 1


def test_poison_messages_go_to_the_dlq_at_once_with_their_reason() -> None:
    sqs, counters = FakeSqs(), Counters()
    unknown = _event().model_copy(update={"type": "acme.acr.fleet.Unknown"})
    invalid = _event().model_copy(update={"data": {"rideId": 1}})
    for body in (
        "{not json",
        _eventbridge_body(unknown),
        _eventbridge_body(invalid),
        '{"specversion": "1.0"}',
    ):
        sqs.put(QUEUE, body)
    _consumer(sqs, lambda e, d: None, counters).poll_once()
    assert sqs.queues[QUEUE] == []
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in sqs.queues[DLQ]]
    assert reasons == ["unparseable", "unknown_type", "schema_invalid", "invalid_envelope"]
    assert counters.get("deadLettered") == 4


def test_a_duplicate_is_acknowledged_and_counted() -> None:
    sqs, counters = FakeSqs(), Counters()

    def handler(event: CloudEvent, data: EventData) -> None:
        raise Duplicate("marker exists")

    sqs.put(QUEUE, _eventbridge_body(_event()))
    _consumer(sqs, handler, counters).poll_once()
    assert sqs.queues[QUEUE] == []
    assert counters.get("duplicatesDiscarded") == 1


def test_raw_sns_delivery_is_understood() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []
    event = _event()
    sqs.put(QUEUE, event.to_json())
    _consumer(sqs, lambda e, d: seen.append(e), counters).poll_once()
    assert [e.id for e in seen] == [event.id]


def test_a_batch_received_after_stop_is_released_to_the_queue_unhandled() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []
    sqs.put(QUEUE, _event().to_json())
    sqs.put(QUEUE, _event().to_json())
    stop = threading.Event()
    consumer = _consumer(sqs, lambda e, d: seen.append(e), counters)
    stop.set()  # e.g. set while the long poll was waiting
    assert consumer.poll_once(stop) == 0
    assert seen == [] and sqs.deleted == [] and len(sqs.queues[QUEUE]) == 2
    assert sqs.visibility == {"rh-m1": 0, "rh-m2": 0}  # visible again now, not after the timeout


def test_run_consumes_until_stop_is_set() -> None:
    sqs, counters = FakeSqs(), Counters()
    stop = threading.Event()

    def handler(event: CloudEvent, data: EventData) -> None:
        stop.set()  # the first message handled stops the loop

    sqs.put(QUEUE, _event().to_json())
    runner = threading.Thread(target=_consumer(sqs, handler, counters).run, args=(stop,), daemon=True)
    runner.start()
    runner.join(5)
    stop.set()
    assert not runner.is_alive() and sqs.queues[QUEUE] == [] and counters.get("consumed") == 1


def test_an_event_from_a_source_that_is_not_its_producer_is_dead_lettered_untrusted_and_never_handled() -> (
    None
):
    sqs, counters, seen = FakeSqs(), Counters(), []
    forged = _event().model_copy(update={"source": "acr.ride-manager"})  # NoCarAvailable is car-dispatcher's
    sqs.put(QUEUE, _eventbridge_body(forged))
    _consumer(sqs, lambda e, d: seen.append(d), counters).poll_once()
    assert seen == [] and sqs.queues[QUEUE] == []
    (dead,) = sqs.queues[DLQ]
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "untrusted_source"
    assert counters.get("untrustedSources") == 1 and counters.get("deadLettered") == 1


def test_an_eventbridge_envelope_whose_source_differs_from_its_events_is_untrusted() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []
    body = json.loads(_eventbridge_body(_event()))
    body["source"] = "acr.ride-manager"  # put on the bus by another service, the detail claims the producer
    sqs.put(QUEUE, json.dumps(body))
    _consumer(sqs, lambda e, d: seen.append(d), counters).poll_once()
    assert seen == []
    assert [m["MessageAttributes"]["reason"]["StringValue"] for m in sqs.queues[DLQ]] == ["untrusted_source"]
    assert counters.get("untrustedSources") == 1


def test_an_event_from_its_producer_is_handled() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []
    assert _event().source == catalog.producer_of(_event().type) == "acr.car-dispatcher"
    sqs.put(QUEUE, _eventbridge_body(_event()))
    _consumer(sqs, lambda e, d: seen.append(d), counters).poll_once()
    assert len(seen) == 1 and DLQ not in sqs.queues and counters.get("untrustedSources") == 0


def _eta(age_s: float) -> CloudEvent:
    """A ``RideEtaUpdated`` (discardable, time-to-live ``ETA_TTL_S``) recorded ``age_s`` ago."""
    eta = RideEtaUpdated(ride_id="ride_1", car_id="c", phase="TO_PICKUP", eta_seconds=60.0, lat=0.0, lon=0.0)
    event = catalog.record(eta, subject="ride_1")
    return event.model_copy(update={"time": event.time - timedelta(seconds=age_s)})


def test_an_expired_eta_is_acknowledged_unhandled_and_counted_by_type() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []
    sqs.put(QUEUE, _eventbridge_body(_eta(ETA_TTL_S + 5)))
    sqs.put(QUEUE, _eventbridge_body(_eta(1)))
    _consumer(sqs, lambda e, d: seen.append(e), counters).poll_once()
    assert sqs.queues[QUEUE] == [] and len(seen) == 1  # both acknowledged; only the fresh one handled
    assert counters.snapshot()["expiredDiscarded"] == 1 and counters.get("consumed") == 1
    metrics = generate_latest(counters.registry).decode()
    assert 'acr_messages_expired_total{event_type="acme.acr.monitoring.RideEtaUpdated"} 1.0' in metrics


def test_an_expired_event_that_changes_state_is_applied_late_never_dropped() -> None:
    sqs, counters, seen = FakeSqs(), Counters(), []
    spec = catalog.CATALOG[_event().type]
    assert not spec.discardable
    late = _event().model_copy(update={"time": datetime.now(UTC) - timedelta(seconds=spec.ttl_s + 60)})
    sqs.put(QUEUE, _eventbridge_body(late))
    _consumer(sqs, lambda e, d: seen.append(e), counters).poll_once()
    assert [e.id for e in seen] == [late.id] and sqs.queues[QUEUE] == []
    assert counters.get("lateApplied") == 1 and counters.get("expiredDiscarded") == 0


def test_every_type_has_a_time_to_live_and_only_ephemeral_facts_are_discardable() -> None:
    discardable = {spec.name for spec in catalog.SPECS if spec.discardable}
    assert discardable == {"RideEtaUpdated"}
    assert all(spec.ttl_s > 0 for spec in catalog.SPECS)
    with pytest.raises(ValueError, match="only a fact"):
        EventSpec("X", "ride", NoCarAvailable, "update", discardable=True)
