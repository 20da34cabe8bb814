"""The ids the BFF answers for fault windows: one service's own id, or, for a window opened on several
services at once, one new id that each of their windows is listed under until it closes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from acr import clock
from bff.ports import Json


def until_of(window: Json) -> datetime:
    """When a service's window closes (its ``until``; else ``seconds`` from now)."""
    try:
        return clock.parse(str(window["until"]))
    except (KeyError, ValueError):
        return clock.now() + timedelta(seconds=float(window.get("seconds") or 0))


@dataclass
class FaultIds:
    """(service, the service's window id) -> (the id the BFF answered, when the window closes)."""

    _shared: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)

    def answer(self, opened: dict[str, Json]) -> Json:
        """``{"faultId", "until"}`` for the windows ``opened`` (service -> the window it answered)."""
        until = max(until_of(window) for window in opened.values())
        if len(opened) == 1:
            fault_id = str(next(iter(opened.values())).get("faultId"))
        else:
            fault_id = f"fault_{uuid.uuid4().hex}"
            for service, window in opened.items():
                self._shared[(service, str(window.get("faultId")))] = (fault_id, until)
        self._forget_closed()
        return {"faultId": fault_id, "until": clock.iso(until)}

    def listed(self, service: str, window: Json) -> Json:
        """A service's open window as ``GET /ops/chaos`` lists it: with its service, and under the id the
        BFF answered (the service's own id kept as ``serviceFaultId`` when they differ)."""
        own = str(window.get("faultId"))
        shared = self._shared.get((service, own))
        listed = window | {"service": service, "faultId": own}
        return listed if shared is None else listed | {"faultId": shared[0], "serviceFaultId": own}

    def _forget_closed(self) -> None:
        now = clock.now()
        for key in [key for key, (_, until) in self._shared.items() if until <= now]:
            del self._shared[key]
