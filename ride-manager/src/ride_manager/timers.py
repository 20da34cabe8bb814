"""The watchdog: every ride ends. It acts on each ride whose durable deadline passed, soonest first, from
the sparse index of deadlines (``handlers.on_deadline``: end it with the system's reason, wait longer for
a car the fleet assigned, or ask payment again).

The watchdog sleeps until the next deadline, and never longer than the soonest a deadline set meanwhile can
fall due (``Deadlines.horizon_s``): an idle stack costs one query per horizon. After it starts, and after
the store could not be read, it lets ``settle_s`` pass before it acts, so the events that queued up while
the service or its store was away are applied first (a deadline compares against what the fleet did, not
only against the clock).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta

from acr import clock
from acr.errors import DependencyUnavailable
from ride_manager import handlers
from ride_manager.domain import Deadlines
from ride_manager.ports import Dispatch, RideHistory

log = logging.getLogger(__name__)
PAGE = 100
SOONEST_S = 0.05  # a full page of due rides: look again almost at once
AFTER_FAILURE_S = 1.0


class OneTickFleet:
    """The fleet as one tick sees it: once it did not answer, it is not asked again in that tick (each
    later ride of the tick gets the same answer at once, instead of one timeout per ride)."""

    def __init__(self, fleet: Dispatch) -> None:
        self._fleet = fleet
        self._down: DependencyUnavailable | None = None

    def pickup_eta(self, lat: float, lon: float) -> float | None:
        return self._fleet.pickup_eta(lat, lon)

    def assigned_car(self, ride_id: str) -> str | None:
        if self._down is not None:
            raise self._down
        try:
            return self._fleet.assigned_car(ride_id)
        except DependencyUnavailable as down:
            self._down = down
            raise


class Watchdog:
    """Acts on the rides whose deadline passed; ``run`` is a service loop."""

    def __init__(
        self,
        *,
        history: RideHistory,
        uow_factory: handlers.UowFactory,
        rules: Deadlines,
        dispatch: Dispatch,
        settle_s: float = 0.0,
    ) -> None:
        self._history = history
        self._uow_factory = uow_factory
        self._rules = rules
        self._dispatch = dispatch
        self._settle_s = settle_s
        self._settled_at: datetime | None = None

    def settle(self) -> None:
        """Act on no deadline for ``settle_s`` from now."""
        self._settled_at = clock.now() + timedelta(seconds=self._settle_s)

    def tick(self) -> float:
        """Act on every due ride of a page; returns the seconds to wait before the next tick."""
        now = clock.now()
        if self._settled_at is not None and now < self._settled_at:
            return max(SOONEST_S, (self._settled_at - now).total_seconds())
        horizon_s = max(SOONEST_S, self._rules.horizon_s)
        due = self._history.deadlines(PAGE)
        done: Counter[str] = Counter()
        fleet = OneTickFleet(self._dispatch)
        try:
            for ride_id, deadline in due:
                if deadline > now:
                    return max(SOONEST_S, min(horizon_s, (deadline - now).total_seconds()))
                done[self._act(ride_id, fleet)] += 1
            return SOONEST_S if len(due) == PAGE else horizon_s
        finally:
            if done:
                log.info("watchdog: %s", dict(sorted(done.items())))

    def _act(self, ride_id: str, fleet: Dispatch) -> str:
        """One ride's deadline; a failure is logged and the ride is tried again on a later tick."""
        try:
            return handlers.on_deadline(
                ride_id, uow_factory=self._uow_factory, rules=self._rules, dispatch=fleet
            ).value
        except Exception:
            log.exception("watchdog: the deadline of ride %s failed", ride_id)
            return "FAILED"

    def run(self, stop: threading.Event) -> None:
        """Settle, tick, then wait until the next ride can fall due (or ``stop`` is set)."""
        self.settle()
        wait_s = 0.0
        while not stop.wait(wait_s):
            try:
                wait_s = self.tick()
            except Exception:
                log.exception("watchdog tick failed: settling before acting again")
                self.settle()
                wait_s = AFTER_FAILURE_S
