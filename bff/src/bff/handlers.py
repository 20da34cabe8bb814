"""The push consumer: ride versions (``RideUpdated``) and ETAs (``RideEtaUpdated``) to the riders'
websockets.

A consumer thread handles each message; the push is staged on the unit of work, and committing it runs
the push on the app's event loop and waits for it, so a failure (a version gap not fillable yet) raises
and the message comes again. Nothing is stored: each connection sends a ride version at most once.
"""

from __future__ import annotations

from acr import tracing
from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.consumer import Handlers
from acr.envelope import CloudEvent
from acr.unit_of_work import EffectsOnly
from bff.handoff import AppLoop
from bff.push import PushHub


def on_ride_updated(
    uow: EffectsOnly, data: RideUpdated, event: CloudEvent, *, hub: PushHub, app_loop: AppLoop
) -> None:
    """Push the ride version to every connection of its rider, in the order of the event's ``sequence``."""
    ride = {**data.ride, "rideId": data.ride_id, "version": data.version}
    trace_id = tracing.current_trace_id()  # the consumer's span: the ride's trace
    sequence = event.sequence
    uow.after_commit(lambda: app_loop.run(hub.ride_updated(data.rider_id, ride, trace_id, sequence)))


def on_ride_eta_updated(
    uow: EffectsOnly, data: RideEtaUpdated, _event: CloudEvent, *, hub: PushHub, app_loop: AppLoop
) -> None:
    """Push the ride's new ETA to its rider (throttled by the hub)."""
    trace_id = tracing.current_trace_id()
    uow.after_commit(lambda: app_loop.run(_eta_updated(hub, data, trace_id)))


async def _eta_updated(hub: PushHub, data: RideEtaUpdated, trace_id: str | None) -> None:
    await hub.eta_updated(data.ride_id, data.phase, data.eta_seconds, data.lat, data.lon, trace_id)


def handlers(*, hub: PushHub, app_loop: AppLoop) -> Handlers[EffectsOnly]:
    """The push consumer's table, for every queue of the BFF's slice."""
    return (
        Handlers[EffectsOnly]()
        .on(RideUpdated, on_ride_updated, hub=hub, app_loop=app_loop)
        .on(RideEtaUpdated, on_ride_eta_updated, hub=hub, app_loop=app_loop)
    )
