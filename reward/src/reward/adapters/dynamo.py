"""DynamoDB adapters of the reward context."""

from __future__ import annotations

from typing import Any

from acr import dynamo
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from reward.domain import MAX_RATING, Effect, Loyalty
from reward.topology import RIDE_EFFECTS, RIDERS


def _loyalty(rider_id: str, item: dict[str, Any] | None) -> Loyalty:
    if item is None:
        return Loyalty(rider_id)
    return Loyalty(
        rider_id,
        int(item.get("rideCount", 0)),
        int(item.get("points", 0)),
        float(item.get("rating", MAX_RATING)),
        int(item.get("version", 0)),
    )


class DynamoLoyaltyView:
    def __init__(self, dynamodb: Any, table: str = RIDERS) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def get(self, rider_id: str) -> Loyalty:
        return _loyalty(rider_id, dynamo.get(self._dynamodb, self._table, {"riderId": rider_id}))


class DynamoRiders:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, rider_id: str) -> Loyalty:
        return _loyalty(rider_id, dynamo.get(self._base.dynamodb, RIDERS, {"riderId": rider_id}))

    def save(self, before: Loyalty, after: Loyalty) -> None:
        """Optimistic concurrency on the row's version (a new rider's row must not exist yet)."""
        item = {
            "riderId": after.rider_id,
            "rideCount": after.ride_count,
            "points": after.points,
            "rating": after.rating,
            "tier": after.tier,
            "version": after.version,
        }
        if before.version == 0:
            self._base.tx.put(RIDERS, item, label="rider", condition="attribute_not_exists(riderId)")
        else:
            self._base.tx.put(
                RIDERS, item, label="rider", condition="version = :v", values={":v": before.version}
            )


class DynamoRideEffects:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def applied(self, ride_id: str, effect: Effect) -> bool:
        return (
            dynamo.get(self._base.dynamodb, RIDE_EFFECTS, {"rideId": ride_id, "effect": effect}) is not None
        )

    def last_sequence(self, ride_id: str) -> int:
        page = self._base.dynamodb.query(
            TableName=RIDE_EFFECTS,
            KeyConditionExpression="rideId = :r",
            ExpressionAttributeValues=dynamo.to_item({":r": ride_id}),
            ConsistentRead=True,
        )
        rows = [dynamo.from_item(item) for item in page.get("Items", [])]
        return max((int(row.get("paymentSequence", 0)) for row in rows), default=0)

    def add(self, ride_id: str, effect: Effect, rider_id: str, sequence: int | None = None) -> None:
        self._base.tx.put(
            RIDE_EFFECTS,
            {"rideId": ride_id, "effect": effect, "riderId": rider_id, "paymentSequence": sequence},
            label="ride_effect",
            condition="attribute_not_exists(rideId)",
        )


class DynamoRewardUnitOfWork(ServiceUnitOfWork):
    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.riders = DynamoRiders(base)
        self.effects = DynamoRideEffects(base)
