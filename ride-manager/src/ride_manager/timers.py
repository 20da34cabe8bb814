"""The dispatch timeout: rides that got no car in time are cancelled (a wall-clock timer).

The timer sleeps until the deadline of the oldest ride still waiting for a car, and at most one timeout
when none waits (a ride booked meanwhile is due no sooner than that): it never polls faster than rides
can fall due, so an idle stack costs one query per timeout.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from acr import clock
from ride_manager import handlers
from ride_manager.ports import RideHistory

log = logging.getLogger(__name__)
PAGE = 100
SOONEST_S = 0.05  # a full page of overdue rides: look again almost at once
AFTER_FAILURE_S = 1.0


class DispatchTimer:
    """Cancels the rides that waited for a car longer than ``timeout_s``; ``run`` is a service loop."""

    def __init__(self, *, history: RideHistory, uow_factory: handlers.UowFactory, timeout_s: float) -> None:
        self._history = history
        self._uow_factory = uow_factory
        self._timeout_s = timeout_s

    def tick(self) -> float:
        """Cancel every overdue ride; returns the seconds until the next ride can fall due."""
        now, cancelled = clock.now(), 0
        waiting = self._history.awaiting_car(PAGE)
        try:
            for ride_id, requested_at in waiting:
                due = requested_at + timedelta(seconds=self._timeout_s)
                if due > now:
                    return max(SOONEST_S, (due - now).total_seconds())
                cancelled += handlers.time_out_dispatch(
                    ride_id, uow_factory=self._uow_factory, timeout_s=self._timeout_s
                )
            return SOONEST_S if len(waiting) == PAGE else self._timeout_s
        finally:
            if cancelled:
                log.info("dispatch timeout cancelled %d ride(s)", cancelled)

    def run(self, stop: threading.Event) -> None:
        """Tick, then wait until the next ride can fall due (or ``stop`` is set)."""
        wait_s = 0.0
        while not stop.wait(wait_s):
            try:
                wait_s = self.tick()
            except Exception:
                log.exception("dispatch timer tick failed")
                wait_s = AFTER_FAILURE_S
