"""HTTP routes of route-monitor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from acr.web import ApiError
from route_monitor.handlers import Monitor

router = APIRouter(prefix="/v1")


def _monitor(request: Request) -> Monitor:
    return request.app.state.monitor  # type: ignore[no-any-return]


Monitoring = Annotated[Monitor, Depends(_monitor)]


@router.get("/rides/{ride_id}/tracking")
def tracking(ride_id: str, monitor: Monitoring) -> dict[str, Any]:
    """The ride's tracking state as measured from telemetry."""
    ride = monitor.store.rides([ride_id]).get(ride_id)
    if ride is None:
        raise ApiError(404, "ride_not_found", f"no telemetry seen for ride {ride_id}")
    return ride.view()


@router.get("/ops/telemetry")
def telemetry(monitor: Monitoring) -> dict[str, Any]:
    """Records processed, records per second, and the lag behind the newest record (ms)."""
    return monitor.processor.stats.snapshot()
