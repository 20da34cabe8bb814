"""The ride history read model (CQRS): every rider's rides, built only from ``RideUpdated`` snapshots.

Ordered by the CloudEvent ``sequence`` (the ride's version; ``acr.ordering``, with gaps allowed): a
snapshot is written only over an older one, so duplicates and stale (out-of-order) updates change nothing
and are dropped as stale; its consumer keeps no markers. Each snapshot is the whole ride, so one that skips
a version is applied at once: with several replicas on its FIFO queue it needs no applied sequence of its
own, only this condition.

Rebuildable: each snapshot also goes on the ``acr-ride`` bus, whose archive keeps them all, and a rebuild
(``acr.projections``) replays that archive through ``on_replayed`` into a fresh copy while the live
snapshots go to both copies. The same condition makes the order of the two streams irrelevant.
``python -m ride_manager.projection rebuild`` asks for one through the BFF.
"""

from __future__ import annotations

from acr.catalog.ride import RideUpdated
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.projections import record_lag
from ride_manager.ports import HistoryUnitOfWork

RIDE_HISTORY_PROJECTION = "ride-history"


def on_ride_updated(uow: HistoryUnitOfWork, data: RideUpdated, event: CloudEvent) -> None:
    """Stage the snapshot over an older one (``Stale`` if it is not newer). A snapshot of the same ride
    stored meanwhile fails the commit, and the kernel runs this again: the new read then finds it stale."""
    uow.history.put_if_newer(data, _sequence(data, event))
    uow.after_commit(lambda: record_lag(RIDE_HISTORY_PROJECTION, event))


def on_replayed(uow: HistoryUnitOfWork, data: RideUpdated, event: CloudEvent) -> None:  # noqa: ARG001
    """A snapshot replayed from the ``acr-ride`` archive, into the copy being rebuilt (none: nothing to
    do). Its lag is not the read model's: the event may be months old."""
    uow.history.put_if_newer(data, _sequence(data, event))


def _sequence(data: RideUpdated, event: CloudEvent) -> int:
    """The snapshot's place in the ride's order: its CloudEvent ``sequence`` (a snapshot recorded before
    snapshots were sequenced has none: its version, which is the same number)."""
    return event.sequence if event.sequence is not None else data.version


HISTORY_HANDLERS = Handlers[HistoryUnitOfWork]().on(RideUpdated, on_ride_updated)
REBUILD_HANDLERS = Handlers[HistoryUnitOfWork]().on(RideUpdated, on_replayed)
