"""The reconciler: a service loop that settles the payments whose outcome is unknown, however long the
gateway stays without an answer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from payment import handlers
from payment.domain import ChargeRetryPolicy, PaymentStatus
from payment.handlers import Charger
from payment.ports import UnitOfWork

log = logging.getLogger(__name__)

PAGE = 25  # payments looked at per round
ONE_TRY = ChargeRetryPolicy(max_attempts=1)


class Reconciler:
    """Every ``pace_s``, reconciles each UNKNOWN payment once (one try at the gateway, least recently
    updated first; the next round comes at once after a round that settled a full page); ``run`` is a
    service loop."""

    def __init__(self, *, unit_of_work: Callable[[], UnitOfWork], charger: Charger, pace_s: float) -> None:
        self._unit_of_work = unit_of_work
        self._charger = replace(charger, policy=ONE_TRY)
        self._pace_s = pace_s

    def tick(self, stop: threading.Event | None = None) -> int:
        """One round; returns how many payments it settled (SUCCEEDED or FAILED). Stops early on ``stop``."""
        settled = 0
        for ride_id in self._unit_of_work().payments.awaiting_outcome(PAGE):
            if stop is not None and stop.is_set():
                break
            payment = handlers.reconcile_payment(self._unit_of_work, ride_id, charger=self._charger)
            if payment is not None and payment.status != PaymentStatus.UNKNOWN:
                settled += 1
        if settled:
            log.info("reconciled %d payment(s)", settled)
        return settled

    def run(self, stop: threading.Event) -> None:
        """A round at once, then one every ``pace_s`` (at once after a full page settled) until ``stop``."""
        wait_s = 0.0
        while not stop.wait(wait_s):
            try:
                wait_s = 0.0 if self.tick(stop) >= PAGE else self._pace_s
            except Exception:
                log.exception("reconciliation round failed")
                wait_s = self._pace_s
