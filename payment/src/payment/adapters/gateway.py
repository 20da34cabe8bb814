"""The simulated payment gateway: captures into a ledger, idempotent by key, with operator failure modes.

- ``ok``: captures at once.
- ``decline``: the card is declined (not transient, no ledger row).
- ``timeout``: no answer within ``timeout_s`` (the outcome is unknown), to captures and to look-ups alike.
  With ``capture_on_timeout`` it captured anyway ("timeout after a successful capture"): a retry with the
  same key must find that capture, never add one.
- ``slow``: answers after ``slow_s`` (about 2 s) and captures.

Injected faults (``acr.faults``): ``gateway.timeout`` loses the answer of a capture that happened, at most
twice per key; ``gateway.unknown`` loses the answer of any call (a capture happens first), with no bound per
key, so unknown outcomes last as long as its window. A ledger that cannot be reached is an unknown outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from acr.clock import now
from acr.faults import NO_FAULTS, Faults
from acr.money import Money
from payment.domain import (
    GATEWAY_MODES,
    CardDeclined,
    Charge,
    GatewayMode,
    GatewayTimeout,
    OutcomeUnknown,
    charge_id_for,
)
from payment.ports import Ledger

log = logging.getLogger(__name__)


@contextmanager
def _unreachable_is_unknown() -> Iterator[None]:
    """A ledger call that fails in transport may or may not have happened: an unknown outcome."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise OutcomeUnknown(f"the gateway could not be reached: {exc}") from exc


class SimulatedGateway:
    """Implements the ``Gateway`` port and ``GatewayOperations``; the mode lives in memory (one instance)."""

    def __init__(
        self,
        ledger: Ledger,
        mode: GatewayMode = "ok",
        *,
        timeout_s: float = 1.0,
        slow_s: float = 2.0,
        capture_on_timeout: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = now,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self._ledger = ledger
        self._faults = faults
        self._mode: GatewayMode = mode
        self._lock = threading.Lock()
        self.timeout_s = timeout_s
        self.slow_s = slow_s
        self.capture_on_timeout = capture_on_timeout
        self._sleep = sleep
        self._clock = clock

    @property
    def mode(self) -> GatewayMode:
        with self._lock:
            return self._mode

    def set_mode(self, mode: GatewayMode) -> None:
        if mode not in GATEWAY_MODES:
            raise ValueError(f"unknown gateway mode {mode!r}")
        with self._lock:
            self._mode = mode
        log.info("gateway mode is now %s", mode)

    def capture(self, idempotency_key: str, ride_id: str, amount: Money) -> Charge:
        with _unreachable_is_unknown():
            return self._answer_capture(idempotency_key, ride_id, amount)

    def find(self, idempotency_key: str, ride_id: str) -> Charge | None:
        mode = self.mode
        if mode == "timeout":
            self._time_out()
        if self._faults.hit("gateway.unknown"):
            raise OutcomeUnknown("injected: the gateway's answer to a look-up was lost")
        if mode == "slow":
            self._sleep(self.slow_s)
        with _unreachable_is_unknown():
            return self._ledger.find(ride_id, charge_id_for(idempotency_key))

    def _answer_capture(self, idempotency_key: str, ride_id: str, amount: Money) -> Charge:
        mode = self.mode
        if mode == "decline":
            # a replayed key answers with the stored result, whatever the card says now
            existing = self._ledger.find(ride_id, charge_id_for(idempotency_key))
            if existing is not None:
                return existing
            raise CardDeclined("card declined by the issuer")
        if mode == "timeout":
            if self.capture_on_timeout:
                self._capture(idempotency_key, ride_id, amount)
            self._time_out()
        if mode == "slow":
            self._sleep(self.slow_s)
        charge = self._capture(idempotency_key, ride_id, amount)
        if self._faults.hit("gateway.timeout", idempotency_key):
            raise GatewayTimeout("injected: the gateway captured but its answer was lost")
        if self._faults.hit("gateway.unknown"):
            raise OutcomeUnknown("injected: the gateway captured but its answer was lost")
        return charge

    def _time_out(self) -> NoReturn:
        self._sleep(self.timeout_s)
        raise GatewayTimeout(f"the gateway did not answer within {self.timeout_s:g} s")

    def _capture(self, idempotency_key: str, ride_id: str, amount: Money) -> Charge:
        """One capture per key: the ledger keeps the first row and returns it to every replay."""
        charge = Charge(
            charge_id_for(idempotency_key), ride_id, "capture", amount, self._clock(), idempotency_key
        )
        return self._ledger.add(charge)

    def charges(self, ride_id: str | None = None, limit: int = 500) -> list[Charge]:
        return self._ledger.list(ride_id, limit)
