"""The kernel's ordering rule: stale, next or early, from the CloudEvent ``sequence`` alone."""

from acr.ordering import Order, order


def test_the_next_sequence_applies_a_repeat_or_older_one_is_stale_and_one_past_the_next_is_early() -> None:
    assert order(0, 1) == Order.APPLY
    assert order(2, 3) == Order.APPLY
    assert order(2, 2) == Order.STALE
    assert order(2, 1) == Order.STALE
    assert order(0, 2) == Order.EARLY
    assert order(2, 5) == Order.EARLY


def test_a_consumer_that_hears_only_some_sequences_applies_any_newer_one() -> None:
    assert order(2, 5, gapless=False) == Order.APPLY
    assert order(2, 2, gapless=False) == Order.STALE


def test_without_a_sequence_on_either_side_the_update_applies() -> None:
    assert order(3, None) == Order.APPLY  # an event recorded before its type carried a sequence
    assert order(None, 1) == Order.APPLY  # applied before sequences were stored
