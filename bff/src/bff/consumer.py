"""The ride stream (and ETA events) -> websocket push.

The SQS consumer calls the handler in its own thread; the work is handed to the app's event loop and
waited for, so a failure (e.g. a version gap not fillable yet) raises and the message comes again.
"""

from __future__ import annotations

import asyncio
import logging

from acr.catalog.base import EventData
from acr.catalog.monitoring import RideEtaUpdated
from acr.catalog.ride import RideUpdated
from acr.consumer import Handler
from acr.envelope import CloudEvent
from bff.push import PushHub

log = logging.getLogger(__name__)

HANDOFF_TIMEOUT_S = 10.0


async def dispatch(hub: PushHub, data: EventData) -> None:
    """Route one event to the hub by its type; other types are ignored."""
    if isinstance(data, RideUpdated):
        await hub.ride_updated(data.rider_id, {**data.ride, "rideId": data.ride_id, "version": data.version})
    elif isinstance(data, RideEtaUpdated):
        hub.eta_updated(data.ride_id, data.phase, data.eta_seconds, data.lat, data.lon)


def make_handler(
    hub: PushHub, loop: asyncio.AbstractEventLoop, timeout_s: float = HANDOFF_TIMEOUT_S
) -> Handler:
    """A thread-side handler that runs ``dispatch`` on ``loop`` and waits for it (raising its failure)."""

    def handle(event: CloudEvent, data: EventData) -> None:
        if not isinstance(data, RideUpdated | RideEtaUpdated):
            log.debug("ignoring %s", event.type)
            return
        asyncio.run_coroutine_threadsafe(dispatch(hub, data), loop).result(timeout=timeout_s)

    return handle
