"""DynamoDB adapters of the payment context (times stored as ISO 8601 text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr import clock, dynamo, tracing
from acr.catalog.payment import PaymentPurpose
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from acr.money import Money
from payment.domain import Charge, Payment, PaymentStatus
from payment.topology import (
    AWAITING_OUTCOME,
    AWAITING_OUTCOME_KEY,
    LEDGER,
    NEWEST_CHARGES,
    NEWEST_CHARGES_KEY,
    PAYMENTS,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _charge(item: dict[str, Any]) -> Charge:
    return Charge(
        item["chargeId"],
        item["rideId"],
        item["type"],
        Money(amount=str(item["amount"]), currency=item.get("currency", "EUR")),
        clock.parse(item["at"]),
        item.get("idempotencyKey", item["rideId"]),
    )


def _charge_row(charge: Charge) -> dict[str, Any]:
    return {
        "rideId": charge.ride_id,
        "chargeId": charge.charge_id,
        "type": charge.type,
        "amount": charge.amount.amount,
        "currency": charge.amount.currency,
        "at": clock.iso(charge.at),
        "idempotencyKey": charge.idempotency_key,
        NEWEST_CHARGES_KEY: "Y",  # one partition of the index: the simulated gateway's few charges a second
    }


class DynamoLedger:
    """The gateway's ledger: ``rideId`` + ``chargeId``; a capture's id comes from its idempotency key,
    so a conditional put keeps exactly one capture per key even under concurrent replays."""

    def __init__(self, dynamodb: DynamoDBClient, table: str = LEDGER) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def find(self, ride_id: str, charge_id: str) -> Charge | None:
        item = dynamo.get(self._dynamodb, self._table, {"rideId": ride_id, "chargeId": charge_id})
        return _charge(item) if item else None

    def add(self, charge: Charge) -> Charge:
        row = _charge_row(charge)
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=dynamo.to_item(row),
                ConditionExpression="attribute_not_exists(chargeId)",
            )
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
            existing = self.find(charge.ride_id, charge.charge_id)
            if existing is None:  # pragma: no cover - a row that exists cannot vanish
                raise
            return existing
        return _charge(row)  # as stored (its time to the millisecond), like every replay gets it

    def list(self, ride_id: str | None, limit: int) -> list[Charge]:
        """A ride's charges (a query of its rows), or the ledger's newest ``limit`` (a query of the head of
        the newest-charges index): never a read of the whole ledger."""
        query: dict[str, Any] = (
            {
                "KeyConditionExpression": "rideId = :r",
                "ExpressionAttributeValues": dynamo.to_item({":r": ride_id}),
                "ConsistentRead": True,
            }
            if ride_id is not None
            else {
                "IndexName": NEWEST_CHARGES,
                "KeyConditionExpression": "#k = :y",
                "ExpressionAttributeNames": {"#k": NEWEST_CHARGES_KEY},
                "ExpressionAttributeValues": dynamo.to_item({":y": "Y"}),
                "ScanIndexForward": False,
            }
        )
        items: list[dict[str, Any]] = []
        query |= {"TableName": self._table, "Limit": limit}
        while len(items) < limit:
            page = self._dynamodb.query(**query)
            items += [dynamo.from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((_charge(i) for i in items), key=lambda c: c.at, reverse=True)[:limit]


def _payment(item: dict[str, Any]) -> Payment:
    updated_at = item.get("updatedAt")
    status = PaymentStatus(item["status"])
    return Payment(
        ride_id=item["rideId"],
        rider_id=item["riderId"],
        purpose=PaymentPurpose(item["purpose"]),
        amount=Money(amount=str(item["amount"]), currency=item.get("currency", "EUR")),
        status=status,
        payment_id=item["paymentId"],
        attempts=int(item.get("attempts", 0)),
        reason=item.get("reason"),
        updated_at=clock.parse(updated_at) if updated_at else None,
        version=int(item.get("version", 1)),
        # a row written before outcomes had a sequence told at most its first one
        sequence=int(item.get("sequence", 0 if status == PaymentStatus.UNKNOWN else 1)),
        ride_sequence=int(item["rideSequence"]) if item.get("rideSequence") is not None else None,
    )


def _payment_row(payment: Payment) -> dict[str, Any]:
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
        "updatedAt": clock.iso(payment.updated_at) if payment.updated_at else None,
        "version": payment.version,
        "sequence": payment.sequence,
        "rideSequence": payment.ride_sequence,
        # only an UNKNOWN payment is in the sparse index the reconciler reads (None leaves the attribute out)
        AWAITING_OUTCOME_KEY: "Y" if payment.status == PaymentStatus.UNKNOWN else None,
    } | tracing.stored_context(payment.ride_id)  # the reconciler, in any process, continues the ride's trace


class DynamoPayments:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, ride_id: str) -> Payment | None:
        item = dynamo.get(self._base.dynamodb, PAYMENTS, {"rideId": ride_id})
        if item is None:
            return None
        tracing.resume_stored(ride_id, item)
        return _payment(item)

    def add(self, payment: Payment) -> None:
        self._base.tx.put(
            PAYMENTS, _payment_row(payment), label="payment", condition="attribute_not_exists(rideId)"
        )

    def update(self, before: Payment, after: Payment) -> None:
        self._base.tx.put(
            PAYMENTS,
            _payment_row(after),
            label="payment",
            condition="version = :v",
            values={":v": before.version},
        )

    def awaiting_outcome(self, limit: int) -> list[str]:
        page = self._base.dynamodb.query(
            TableName=PAYMENTS,
            IndexName=AWAITING_OUTCOME,
            KeyConditionExpression=f"{AWAITING_OUTCOME_KEY} = :y",
            ExpressionAttributeValues=dynamo.to_item({":y": "Y"}),
            ProjectionExpression="rideId",
            Limit=limit,
        )
        return [str(dynamo.from_item(item)["rideId"]) for item in page.get("Items", [])]


class DynamoPaymentUnitOfWork(ServiceUnitOfWork):
    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.payments = DynamoPayments(base)
