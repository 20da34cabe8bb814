"""DynamoDB adapters of the payment context."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from acr import dynamo
from acr.money import Money
from acr.unit_of_work import DynamoUnitOfWork, ServiceUnitOfWork
from payment.domain import Charge, Payment, PaymentStatus, Purpose
from payment.topology import LEDGER, PAYMENTS


def _charge(item: dict[str, Any]) -> Charge:
    return Charge(
        item["chargeId"],
        item["rideId"],
        item["type"],
        Money(amount=str(item["amount"]), currency=item.get("currency", "EUR")),
        item["at"],
        item.get("idempotencyKey", item["rideId"]),
    )


class DynamoLedger:
    """The gateway's ledger: ``rideId`` + ``chargeId``; a capture's id comes from its idempotency key,
    so a conditional put keeps exactly one capture per key even under concurrent replays."""

    def __init__(self, dynamodb: Any, table: str = LEDGER) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def find(self, ride_id: str, charge_id: str) -> Charge | None:
        item = dynamo.get(self._dynamodb, self._table, {"rideId": ride_id, "chargeId": charge_id})
        return _charge(item) if item else None

    def add(self, charge: Charge) -> Charge:
        item = {
            "rideId": charge.ride_id,
            "chargeId": charge.charge_id,
            "type": charge.type,
            "amount": charge.amount.amount,
            "currency": charge.amount.currency,
            "at": charge.at,
            "idempotencyKey": charge.idempotency_key,
        }
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=dynamo.to_item(item),
                ConditionExpression="attribute_not_exists(chargeId)",
            )
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
            existing = self.find(charge.ride_id, charge.charge_id)
            if existing is None:  # pragma: no cover - a row that exists cannot vanish
                raise
            return existing
        return charge

    def list(self, ride_id: str | None, limit: int) -> list[Charge]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        if ride_id is not None:
            kwargs |= {
                "KeyConditionExpression": "rideId = :r",
                "ExpressionAttributeValues": dynamo.to_item({":r": ride_id}),
            }
        while True:
            page = (self._dynamodb.query if ride_id is not None else self._dynamodb.scan)(**kwargs)
            items += [dynamo.from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((_charge(i) for i in items), key=lambda c: c.at, reverse=True)[:limit]


def _payment(item: dict[str, Any]) -> Payment:
    return Payment(
        ride_id=item["rideId"],
        rider_id=item["riderId"],
        purpose=Purpose(item["purpose"]),
        amount=Money(amount=str(item["amount"]), currency=item.get("currency", "EUR")),
        status=PaymentStatus(item["status"]),
        payment_id=item["paymentId"],
        attempts=int(item.get("attempts", 0)),
        reason=item.get("reason"),
        updated_at=item.get("updatedAt"),
        version=int(item.get("version", 1)),
    )


def _row(payment: Payment) -> dict[str, Any]:
    return {
        "rideId": payment.ride_id,
        "riderId": payment.rider_id,
        "purpose": payment.purpose.value,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "status": payment.status.value,
        "paymentId": payment.payment_id,
        "attempts": payment.attempts,
        "reason": payment.reason,
        "updatedAt": payment.updated_at,
        "version": payment.version,
    }


class DynamoPayments:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, ride_id: str) -> Payment | None:
        item = dynamo.get(self._base.dynamodb, PAYMENTS, {"rideId": ride_id})
        return _payment(item) if item else None

    def add(self, payment: Payment) -> None:
        self._base.tx.put(PAYMENTS, _row(payment), label="payment", condition="attribute_not_exists(rideId)")

    def update(self, before: Payment, after: Payment) -> None:
        self._base.tx.put(
            PAYMENTS, _row(after), label="payment", condition="version = :v", values={":v": before.version}
        )


class DynamoPaymentUnitOfWork(ServiceUnitOfWork):
    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.payments = DynamoPayments(base)
