"""The rider-stats read model (CQRS): each rider's standing (rides, points, tier, rating), built only from
``RiderStandingChanged``, which reward records with each change of a rider's loyalty.

Ordered by the CloudEvent ``sequence`` (the loyalty's version; ``acr.ordering``, with gaps allowed): a
standing is written only over an older one, so duplicates and stale (out-of-order) ones change nothing and
are dropped as stale; its consumer keeps no markers. Each event is the whole standing, so one that skips a
version is applied at once, by any replica of the ``stats`` queue.

Rebuildable: the ``acr-reward`` bus's archive keeps every standing, and a rebuild (``acr.projections``)
replays it through ``on_replayed`` into a fresh copy while the live standings go to both copies. The same
condition makes the order of the two streams irrelevant.
"""

from __future__ import annotations

from acr.catalog.reward import RiderStandingChanged
from acr.consumer import Handlers, PoisonMessage
from acr.envelope import CloudEvent
from acr.projections import record_lag
from reward.domain import Standing
from reward.ports import StatsUnitOfWork

RIDER_STATS_PROJECTION = "rider-stats"


def on_standing_changed(uow: StatsUnitOfWork, data: RiderStandingChanged, event: CloudEvent) -> None:
    """Stage the standing over an older one (``Stale`` if it is not newer). A standing of the same rider
    stored meanwhile fails the commit, and the kernel runs this again: the new read then finds it stale."""
    uow.stats.put_if_newer(_standing(data), _sequence(event))
    uow.after_commit(lambda: record_lag(RIDER_STATS_PROJECTION, event))


def on_replayed(uow: StatsUnitOfWork, data: RiderStandingChanged, event: CloudEvent) -> None:
    """A standing replayed from the ``acr-reward`` archive, into the copy being rebuilt (none: nothing to
    do). Its lag is not the read model's: the event may be months old."""
    uow.stats.put_if_newer(_standing(data), _sequence(event))


def _standing(data: RiderStandingChanged) -> Standing:
    return Standing(data.rider_id, data.ride_count, data.points, data.tier, data.rating)


def _sequence(event: CloudEvent) -> int:
    """The loyalty's version: reward records every standing with it, and only it orders two standings."""
    if event.sequence is None:
        raise PoisonMessage("unordered", f"{event.type} {event.id} carries no sequence")
    return event.sequence


STATS_HANDLERS = Handlers[StatsUnitOfWork]().on(RiderStandingChanged, on_standing_changed)
REBUILD_HANDLERS = Handlers[StatsUnitOfWork]().on(RiderStandingChanged, on_replayed)
