"""In-memory adapters of the payment ports, with the DynamoDB ones' conditions (for fast tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from payment.domain import Charge, Payment, PaymentStatus


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Charge] = {}
        self._lock = threading.Lock()

    def find(self, ride_id: str, charge_id: str) -> Charge | None:
        return self.rows.get((ride_id, charge_id))

    def add(self, charge: Charge) -> Charge:
        with self._lock:
            return self.rows.setdefault((charge.ride_id, charge.charge_id), charge)

    def list(self, ride_id: str | None, limit: int) -> list[Charge]:
        rows = [c for c in self.rows.values() if ride_id is None or c.ride_id == ride_id]
        return sorted(rows, key=lambda c: c.at, reverse=True)[:limit]


@dataclass
class PaymentStore(MessageStore):
    payments: dict[str, Payment] = field(default_factory=dict)


class MemoryPaymentUnitOfWork(MemoryUnitOfWork):
    def __init__(self, store: PaymentStore, before_commit: Callable[[], None] | None = None) -> None:
        super().__init__(store, before_commit)
        self.store = store
        self.payments = _Payments(self)


class _Payments:
    def __init__(self, uow: MemoryPaymentUnitOfWork) -> None:
        self._uow = uow

    def get(self, ride_id: str) -> Payment | None:
        return self._uow.store.payments.get(ride_id)

    def add(self, payment: Payment) -> None:
        rows = self._uow.store.payments
        self._uow.stage(
            lambda: "payment" if payment.ride_id in rows else None,
            lambda: rows.__setitem__(payment.ride_id, payment),
        )

    def update(self, before: Payment, after: Payment) -> None:
        rows = self._uow.store.payments

        def check() -> str | None:
            current = rows.get(before.ride_id)
            return None if current is not None and current.version == before.version else "payment"

        self._uow.stage(check, lambda: rows.__setitem__(after.ride_id, after))

    def awaiting_outcome(self, limit: int) -> list[str]:
        unknown = [p for p in list(self._uow.store.payments.values()) if p.status == PaymentStatus.UNKNOWN]
        return [
            p.ride_id for p in sorted(unknown, key=lambda p: p.updated_at or datetime.min.replace(tzinfo=UTC))
        ][:limit]
