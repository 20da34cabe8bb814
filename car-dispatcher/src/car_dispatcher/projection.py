"""The live fleet view read model (``GET /v1/fleet``): every car's dispatch state, built only from
``FleetCarUpdated`` events.

car-dispatcher records one in the same transaction as every change of a car's state (and one per seeded
car), carrying the car's whole dispatch state; ``sequence`` is the car's version. A row is written only over
an older one (``acr.ordering``, gaps allowed: each event is the whole state), so duplicates and late events
change nothing and are dropped as stale; the consumer keeps no markers.

Rebuildable like the ride history: the events travel on the ``acr-fleet`` bus, whose archive keeps them all,
and a rebuild (``acr.projections``) replays that archive through ``on_replayed`` into a fresh copy while the
live events go to both copies. Positions are the exception: telemetry moves every car several times a
second, far too often for a table, so the answer takes each car's freshest position from the process's
memory (``FleetView``) and falls back to the one its last event carried.
"""

from __future__ import annotations

from dataclasses import replace

from acr.catalog.fleet import FleetCarUpdated
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.projections import record_lag
from car_dispatcher.domain import Car
from car_dispatcher.ports import FleetReadModel, FleetView, FleetViewUnitOfWork

FLEET_PROJECTION = "fleet"


def on_fleet_car_updated(uow: FleetViewUnitOfWork, data: FleetCarUpdated, event: CloudEvent) -> None:
    """Stage the car's state over an older one (``Stale`` if it is not newer). A newer state of the same
    car stored meanwhile fails the commit, and the kernel runs this again: the new read finds it stale."""
    uow.fleet_view.put_if_newer(data, _sequence(data, event))
    uow.after_commit(lambda: record_lag(FLEET_PROJECTION, event))


def on_replayed(uow: FleetViewUnitOfWork, data: FleetCarUpdated, event: CloudEvent) -> None:
    """A car state replayed from the ``acr-fleet`` archive, into the copy being rebuilt (none: nothing to
    do). Its lag is not the read model's: the event may be months old."""
    uow.fleet_view.put_if_newer(data, _sequence(data, event))


def live_fleet(view: FleetReadModel, fleet: FleetView) -> list[Car]:
    """The view's cars, each where this process last knew it to be (telemetry), else where its last event
    put it."""
    return [
        replace(car, lat=p[0], lon=p[1]) if (p := fleet.position(car.car_id)) else car for car in view.cars()
    ]


def _sequence(data: FleetCarUpdated, event: CloudEvent) -> int:
    return event.sequence if event.sequence is not None else data.version


FLEET_VIEW_HANDLERS = Handlers[FleetViewUnitOfWork]().on(FleetCarUpdated, on_fleet_car_updated)
REBUILD_HANDLERS = Handlers[FleetViewUnitOfWork]().on(FleetCarUpdated, on_replayed)
