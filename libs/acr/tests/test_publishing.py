"""The PutEvents path checks every response entry: sent, may pass later (retry), or never (dead); one call,
no retries inside it, and the backoff a retry waits on its row."""

import random

from acr_exactly_once_fakes import ScriptedChannel

from acr.catalog.fleet import NoCarAvailable
from acr.channels import TransportError
from acr.publishing import Backoff, publish
from acr.unit_of_work import Outgoing, outgoing


def _batch(n: int) -> list[Outgoing]:
    return [outgoing(NoCarAvailable(ride_id=f"r{i}", reason="x"), subject=f"r{i}") for i in range(n)]


def test_a_partially_failed_batch_is_sent_once_and_only_the_failed_entries_are_to_be_retried() -> None:
    batch = _batch(4)
    channel = ScriptedChannel([[None, "ThrottlingException", None, "InternalFailure"]])
    report = publish(channel, batch)

    assert len(channel.calls) == 1  # no retry inside the call: the relay retries from the row
    assert [o.event.id for o in report.sent] == [batch[0].event.id, batch[2].event.id]
    assert [(r.outgoing.event.id, r.reason) for r in report.retry] == [
        (batch[1].event.id, "ThrottlingException"),
        (batch[3].event.id, "InternalFailure"),
    ]
    assert {o.event.eventcount for o in report.sent} == {1} and report.dead == []
    assert report.resent() == {"ThrottlingException": 1, "InternalFailure": 1}
    assert not report.unanswered  # the destination answered: some entries were accepted


def test_non_retryable_entries_are_dead_letters() -> None:
    batch = _batch(2)
    report = publish(ScriptedChannel([[None, "ValidationException"]]), batch)
    assert [(d.outgoing.event.id, d.error_code) for d in report.dead] == [
        (batch[1].event.id, "ValidationException")
    ]
    assert report.retry == [] and not report.unanswered


def test_a_lost_acknowledgement_leaves_the_whole_batch_to_retry_with_the_same_ids() -> None:
    batch = _batch(3)
    report = publish(ScriptedChannel([TransportError("read timeout")]), batch)
    assert [(r.outgoing.event.id, r.reason) for r in report.retry] == [
        (o.event.id, "transport") for o in batch
    ]
    assert report.unanswered and report.resent() == {"transport": 3}


def test_a_throttled_batch_is_unanswered() -> None:
    report = publish(ScriptedChannel([["ThrottlingException"] * 2]), _batch(2))
    assert report.unanswered and report.sent == [] and report.dead == []


def test_the_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff, rng = Backoff(base_s=0.25, max_s=30.0), random.Random(1)
    for sends, step in [(1, 0.25), (2, 0.5), (3, 1.0), (8, 30.0), (9, 30.0), (500, 30.0)]:
        delays = [backoff.delay(sends, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays), sends
        assert len(set(delays)) > 100  # jittered: relays do not retry in step
