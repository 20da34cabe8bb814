"""Ordering by the CloudEvent ``sequence``: the one rule a consumer of versioned facts uses to decide whether
an update is stale, next, or early.

A producer stamps each event about an aggregate with the aggregate's version (``sequence``: 1, 2, 3...). A
consumer keeps the last sequence it applied for that aggregate and compares: not newer is stale (a
redelivery, or overtaken by a newer one); exactly the next one applies; beyond the next one came early, one
in between is still on its way, so it waits (``Park``). Neither broker order nor a field of the payload
decides: several relays and competing consumers can reorder a group (docs/exactly-once.md).
"""

from __future__ import annotations

from enum import StrEnum

from acr.consumer import Stale


class Order(StrEnum):
    APPLY = "APPLY"
    STALE = "STALE"
    EARLY = "EARLY"


def order(applied: int | None, sequence: int | None, *, gapless: bool = True) -> Order:
    """Where an update carrying ``sequence`` stands after ``applied`` (0: nothing applied yet; None: what was
    applied carried no sequence, an event recorded before its type was sequenced, so anything goes).
    ``gapless``: every sequence number is told to this consumer, so a gap means one is still on its way;
    otherwise (a consumer that hears only some of them) a newer one applies whatever lies between."""
    if sequence is None or applied is None:
        return Order.APPLY
    if sequence <= applied:
        return Order.STALE
    if gapless and sequence > applied + 1:
        return Order.EARLY
    return Order.APPLY


def drop_if_stale(applied: int | None, sequence: int | None, what: str) -> None:
    """Raise ``Stale`` (the kernel acknowledges and counts it) when ``sequence`` is not newer than
    ``applied``, for a consumer that hears only some of an aggregate's versions (a gap is no wait)."""
    if order(applied, sequence, gapless=False) is Order.STALE:
        raise Stale(f"{what}: #{sequence} is not newer than #{applied}, applied already")
