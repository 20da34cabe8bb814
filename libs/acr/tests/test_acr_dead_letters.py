"""Each service reads and redrives its own DLQs (``GET /v1/ops/dlq``, ``POST /v1/ops/dlq/{queue}/redrive``),
on in-process moto: its consumers' DLQs (each replica's copy, when per replica) and its producer DLQ, never
another service's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from acr import dead_letters
from acr.catalog import CATALOG, record
from acr.catalog.fleet import NoCarAvailable
from acr.errors import NotFound
from acr.loops import Loops
from acr.runtime import Messaging
from acr.service import Runtime, Service
from acr.settings import Settings
from acr.topology import discover
from acr_testkit.aws import client, in_process_messaging, published

OPS = {"X-Ops-Token": Settings().ops_token}
TOPOLOGIES = {t.service: t for t in discover()}
EVENTS_DLQ = "acr-ride-manager-events-dlq"
HISTORY_DLQ = "acr-ride-manager-history-dlq.fifo"


@pytest.fixture
def ride_manager() -> Iterator[Messaging]:
    with in_process_messaging(TOPOLOGIES["ride-manager"]) as messaging:
        yield messaging


def _dead_letter(messaging: Messaging, dlq: str, reason: str | None, **extra: Any) -> None:
    """One message into ``dlq`` as the consumer sends it (its reason, where it came from)."""
    attributes: dict[str, Any] = {"origin": {"DataType": "String", "StringValue": "test"}}
    if reason:
        attributes |= {
            "reason": {"DataType": "String", "StringValue": reason},
            "sourceQueue": {"DataType": "String", "StringValue": dlq.replace("-dlq", "", 1)},
        }
    message: dict[str, Any] = {"QueueUrl": messaging.queue_url(dlq), "MessageBody": '{"n": 1}'}
    message |= {"MessageAttributes": attributes} | extra
    messaging.sqs.send_message(**message)


def _received(messaging: Messaging, queue: str) -> list[dict[str, Any]]:
    page = messaging.sqs.receive_message(
        QueueUrl=messaging.queue_url(queue),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["MessageGroupId"],
    )
    return list(page.get("Messages", []))


def _depths(messaging: Messaging) -> dict[str, int]:
    return {q["queue"]: q["depth"] for q in messaging.dead_letter_queues()}


def test_a_service_lists_its_own_dlqs_with_depths_and_reasons_and_no_other(ride_manager: Messaging) -> None:
    for reason in ("unknown_type", "unknown_type", "schema_invalid"):
        _dead_letter(ride_manager, EVENTS_DLQ, reason)
    _dead_letter(ride_manager, HISTORY_DLQ, None, MessageGroupId="ride_1", MessageDeduplicationId="m1")
    _dead_letter(ride_manager, "acr-reward-events-dlq", "unknown_type")  # reward's, not ride-manager's

    listed = ride_manager.dead_letter_queues()
    assert [q["queue"] for q in listed] == [
        EVENTS_DLQ,
        HISTORY_DLQ,
        "acr-ride-manager-history-rebuild-dlq",
        "acr-ride-manager-producer-dlq",
    ]
    by_name = {q["queue"]: q for q in listed}
    assert by_name[EVENTS_DLQ] == {
        "queue": EVENTS_DLQ,
        "depth": 3,
        "reasons": {"unknown_type": 2, "schema_invalid": 1},
    }
    assert by_name[HISTORY_DLQ]["reasons"] == {"unknown": 1}  # moved by SQS's redrive policy: no reason
    assert by_name["acr-ride-manager-producer-dlq"] == {
        "queue": "acr-ride-manager-producer-dlq",
        "depth": 0,
        "reasons": {},
    }
    assert _depths(ride_manager)[EVENTS_DLQ] == 3  # a peek leaves the messages where they are


def test_a_redrive_moves_dead_letters_back_with_their_attributes_but_not_the_consumers(
    ride_manager: Messaging,
) -> None:
    for _ in range(2):
        _dead_letter(ride_manager, EVENTS_DLQ, "unknown_type")
    assert ride_manager.redrive_dead_letter_queue(EVENTS_DLQ) == {"queue": EVENTS_DLQ, "redriven": 2}
    back = _received(ride_manager, "acr-ride-manager-events")
    assert [m["Body"] for m in back] == ['{"n": 1}', '{"n": 1}']
    assert all(set(m["MessageAttributes"]) == {"origin"} for m in back)
    assert _depths(ride_manager)[EVENTS_DLQ] == 0
    assert ride_manager.redrive_dead_letter_queue(EVENTS_DLQ) == {"queue": EVENTS_DLQ, "redriven": 0}


def test_a_fifo_dead_letter_goes_back_in_its_group(ride_manager: Messaging) -> None:
    _dead_letter(
        ride_manager, HISTORY_DLQ, "orphan_update", MessageGroupId="ride_7", MessageDeduplicationId="a"
    )
    assert ride_manager.redrive_dead_letter_queue(HISTORY_DLQ)["redriven"] == 1
    (back,) = _received(ride_manager, "acr-ride-manager-history.fifo")
    assert back["Attributes"]["MessageGroupId"] == "ride_7"


def test_a_redrive_moves_at_most_max_redrive_messages(
    ride_manager: Messaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dead_letters, "MAX_REDRIVE", 3)
    for _ in range(5):
        _dead_letter(ride_manager, EVENTS_DLQ, "unknown_type")
    assert ride_manager.redrive_dead_letter_queue(EVENTS_DLQ)["redriven"] == 3
    assert _depths(ride_manager)[EVENTS_DLQ] == 2


def test_a_dead_letter_claiming_another_services_queue_goes_back_to_its_own(ride_manager: Messaging) -> None:
    _dead_letter(ride_manager, EVENTS_DLQ, "unknown_type")
    url = ride_manager.queue_url(EVENTS_DLQ)
    ride_manager.sqs.send_message(
        QueueUrl=url,
        MessageBody="{}",
        MessageAttributes={"sourceQueue": {"DataType": "String", "StringValue": "acr-payment-events"}},
    )
    assert ride_manager.redrive_dead_letter_queue(EVENTS_DLQ)["redriven"] == 2
    assert len(_received(ride_manager, "acr-ride-manager-events")) == 2
    assert _received(ride_manager, "acr-payment-events") == []


def test_another_services_dlq_or_an_unknown_queue_is_not_found(ride_manager: Messaging) -> None:
    _dead_letter(ride_manager, "acr-reward-events-dlq", "unknown_type")
    for queue in ("acr-reward-events-dlq", "acr-ride-manager-events", "acr-nobody-events-dlq"):
        with pytest.raises(NotFound):
            ride_manager.redrive_dead_letter_queue(queue)
    assert (
        ride_manager.sqs.get_queue_attributes(
            QueueUrl=ride_manager.queue_url("acr-reward-events-dlq"),
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "1"
    )


def test_the_producer_dlq_is_published_again_from_the_outbox() -> None:
    with in_process_messaging(TOPOLOGIES["car-dispatcher"]) as dispatcher:
        event = record(NoCarAvailable(ride_id="ride_1", reason="none free"), subject="ride_1")
        body = {
            "destination": str(CATALOG[event.type].destination),
            "group": None,
            "event": json.loads(event.to_json()),
        }
        dlq = "acr-car-dispatcher-producer-dlq"
        dispatcher.sqs.send_message(
            QueueUrl=dispatcher.queue_url(dlq),
            MessageBody=json.dumps(body),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": "ValidationException"}},
        )
        consumers = {name: 0 for _, name, _ in TOPOLOGIES["car-dispatcher"].all_queues()}
        assert _depths(dispatcher) == consumers | {dlq: 1}
        assert dispatcher.redrive_dead_letter_queue(dlq) == {"queue": dlq, "redriven": 1}
        assert published(dispatcher) == ["NoCarAvailable"] and _depths(dispatcher)[dlq] == 0


def test_each_replicas_copy_is_listed_and_redriven_by_any_replica_of_the_service() -> None:
    bff = TOPOLOGIES["bff"]
    with in_process_messaging(bff, Settings(aws_endpoint_url="", replica="bff-1")) as one:
        two = Messaging(bff, Settings(aws_endpoint_url="", replica="bff-2"), Loops(), make_client=client)
        copy = "acr-bff-ride-eta-dlq-bff-2"
        _dead_letter(two, copy, "unparseable")
        listed = {q["queue"]: q for q in one.dead_letter_queues()}
        assert set(listed) == {
            "acr-bff-ride-eta-dlq-bff-1",
            "acr-bff-ride-eta-dlq-bff-2",
            "acr-bff-ride-updates-dlq-bff-1.fifo",
            "acr-bff-ride-updates-dlq-bff-2.fifo",
        }
        assert listed[copy]["reasons"] == {"unparseable": 1}
        assert one.redrive_dead_letter_queue(copy)["redriven"] == 1
        assert len(_received(two, "acr-bff-ride-eta-bff-2")) == 1
        two.close()
        assert {q["queue"] for q in one.dead_letter_queues()} == {
            "acr-bff-ride-eta-dlq-bff-1",
            "acr-bff-ride-updates-dlq-bff-1.fifo",
        }


def _app(messaging: Messaging | None) -> TestClient:
    def wire(runtime: Runtime) -> None:
        runtime.messaging = messaging

    return TestClient(Service("ride-manager", wire).app(settings=Settings()), headers=OPS)


def test_the_ops_routes_list_and_redrive_the_services_dlqs(ride_manager: Messaging) -> None:
    _dead_letter(ride_manager, EVENTS_DLQ, "untrusted_source")
    with _app(ride_manager) as app:
        listed = app.get("/v1/ops/dlq").json()
        assert listed["service"] == "ride-manager"
        assert {"queue": EVENTS_DLQ, "depth": 1, "reasons": {"untrusted_source": 1}} in listed["queues"]
        moved = app.post(f"/v1/ops/dlq/{EVENTS_DLQ}/redrive")
        assert moved.status_code == 200 and moved.json() == {"queue": EVENTS_DLQ, "redriven": 1}
        refused = app.post("/v1/ops/dlq/acr-reward-events-dlq/redrive")
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
        assert app.get("/v1/ops/dlq", headers={"X-Ops-Token": "wrong"}).status_code == 401


def test_a_service_without_messaging_has_no_dlq() -> None:
    with _app(None) as app:
        assert app.get("/v1/ops/dlq").json() == {"service": "ride-manager", "queues": []}
        assert app.post(f"/v1/ops/dlq/{EVENTS_DLQ}/redrive").status_code == 404
