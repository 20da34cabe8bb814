"""The dispatch timeout: rides that got no car in time are cancelled (a wall-clock timer, polled)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from ride_manager import handlers
from ride_manager.domain import iso, now_utc
from ride_manager.ports import RideHistory

log = logging.getLogger(__name__)


class DispatchTimer:
    def __init__(
        self,
        *,
        history: RideHistory,
        uow_factory: handlers.UowFactory,
        timeout_s: float,
        every_s: float = 1.0,
    ) -> None:
        self._history = history
        self._uow_factory = uow_factory
        self._timeout_s = timeout_s
        self._every_s = every_s

    def tick(self) -> int:
        """Cancel every overdue ride; returns how many were cancelled."""
        overdue = self._history.awaiting_car(iso(now_utc() - timedelta(seconds=self._timeout_s)))
        cancelled = sum(
            handlers.time_out_dispatch(ride_id, uow_factory=self._uow_factory, timeout_s=self._timeout_s)
            for ride_id in overdue
        )
        if cancelled:
            log.info("dispatch timeout cancelled %d ride(s)", cancelled)
        return cancelled

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._every_s):
            try:
                self.tick()
            except Exception:
                log.exception("dispatch timer tick failed")
