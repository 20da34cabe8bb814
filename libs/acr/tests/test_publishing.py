"""The PutEvents path checks every response entry and resends only what failed, with the same ids."""

from acr_exactly_once_fakes import ScriptedChannel, no_sleep

from acr.catalog.fleet import NoCarAvailable
from acr.channels import TransportError
from acr.publishing import RetryPolicy, publish
from acr.unit_of_work import Outgoing, outgoing


def _batch(n: int) -> list[Outgoing]:
    return [outgoing(NoCarAvailable(ride_id=f"r{i}", reason="x"), subject=f"r{i}") for i in range(n)]


def test_a_partially_failed_batch_resends_only_the_failed_entries_with_the_same_ids() -> None:
    batch = _batch(4)
    channel = ScriptedChannel([[None, "ThrottlingException", None, "InternalFailure"], [None, None]])
    report = publish(channel, batch, RetryPolicy(attempts=3), sleep=no_sleep)

    resent = channel.calls[1]
    assert [o.event.id for o in resent] == [batch[1].event.id, batch[3].event.id]
    assert [o.event.eventcount for o in resent] == [2, 2]
    assert sorted(o.event.id for o in report.sent) == sorted(o.event.id for o in batch)
    assert report.dead == []
    assert report.resent == {"ThrottlingException": 1, "InternalFailure": 1}


def test_non_retryable_entries_are_dead_lettered_at_once() -> None:
    batch = _batch(2)
    channel = ScriptedChannel([[None, "ValidationException"]])
    report = publish(channel, batch, sleep=no_sleep)
    assert len(channel.calls) == 1
    assert [(d.outgoing.event.id, d.error_code) for d in report.dead] == [
        (batch[1].event.id, "ValidationException")
    ]


def test_a_lost_acknowledgement_resends_the_whole_batch_with_the_same_ids() -> None:
    batch = _batch(3)
    channel = ScriptedChannel([TransportError("read timeout"), [None, None, None]])
    report = publish(channel, batch, sleep=no_sleep)
    assert [o.event.id for o in channel.calls[1]] == [o.event.id for o in batch]
    assert {o.event.eventcount for o in report.sent} == {2}
    assert report.resent == {"transport": 3}


def test_retries_stop_at_the_budget_and_dead_letter_what_is_left() -> None:
    batch = _batch(1)
    channel = ScriptedChannel([["ThrottlingException"]] * 3)
    delays: list[float] = []
    report = publish(
        channel, batch, RetryPolicy(attempts=3, base_delay_s=0.1, max_delay_s=1), sleep=delays.append
    )
    assert len(channel.calls) == 3
    assert [d.error_code for d in report.dead] == ["ThrottlingException"]
    assert report.dead[0].outgoing.event.eventcount == 3
    assert len(delays) == 2 and all(0 <= d <= 1 for d in delays)
