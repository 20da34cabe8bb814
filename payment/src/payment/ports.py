"""What the payment context needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from acr import unit_of_work
from acr.money import Money
from payment.domain import Charge, GatewayMode, Payment


class Gateway(Protocol):
    """The payment gateway: captures idempotently by key. Raises ``CardDeclined`` (a definite no) or
    ``OutcomeUnknown`` (no answer: it may or may not have captured)."""

    def capture(self, idempotency_key: str, ride_id: str, amount: Money) -> Charge: ...

    def find(self, idempotency_key: str, ride_id: str) -> Charge | None:
        """The capture made with ``idempotency_key``, or None when there is none; raises ``OutcomeUnknown``
        when the gateway does not answer."""
        ...


class GatewayOperations(Protocol):
    """The simulated gateway's operator side: its failure mode and its ledger."""

    @property
    def mode(self) -> GatewayMode: ...

    def set_mode(self, mode: GatewayMode) -> None: ...

    def charges(self, ride_id: str | None = None, limit: int = 500) -> list[Charge]: ...


class OperatedGateway(Gateway, GatewayOperations, Protocol):
    """A gateway that both captures and answers to the operator (the simulated one)."""


class Ledger(Protocol):
    """The gateway's own books (outside the payment transaction, like a real gateway's)."""

    def find(self, ride_id: str, charge_id: str) -> Charge | None: ...

    def add(self, charge: Charge) -> Charge:
        """Store ``charge`` unless a row with its id exists; returns the stored row (the first one)."""
        ...

    def list(self, ride_id: str | None, limit: int) -> list[Charge]:
        """The ride's charges (every ride's when ``ride_id`` is None), newest first, at most ``limit``."""
        ...


class Payments(Protocol):
    def get(self, ride_id: str) -> Payment | None: ...

    def add(self, payment: Payment) -> None:
        """Stage a new payment (fails the commit with label ``payment`` if the ride has one)."""
        ...

    def update(self, before: Payment, after: Payment) -> None:
        """Stage ``after`` (fails the commit with label ``payment`` unless the stored row is at
        ``before.version``)."""
        ...

    def awaiting_outcome(self, limit: int) -> list[str]:
        """The rides whose payment is UNKNOWN, least recently updated first, at most ``limit``."""
        ...


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    @property
    def payments(self) -> Payments: ...
