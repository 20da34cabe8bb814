"""DynamoDB adapters of the reward context: the loyalty write model, and the rider-stats read model (its
copies, ``acr.projections``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acr import dynamo
from acr.catalog.reward import Tier
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from acr.projection_store import on_copy, put_newer
from acr.projections import Projection, copy_name
from reward.domain import MAX_RATING, Effect, Loyalty, Standing
from reward.topology import RIDE_EFFECTS, RIDER_STATS, RIDERS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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


# --- the rider-stats read model ------------------------------------------------------------------------
class DynamoStatsRows:
    """Writes a standing to each of ``copies`` where the stored one is older."""

    def __init__(self, base: DynamoUnitOfWork, copies: tuple[str, ...]) -> None:
        self._base = base
        self._copies = copies

    def put_if_newer(self, standing: Standing, sequence: int) -> None:
        row = {
            "rideCount": standing.ride_count,
            "points": standing.points,
            "tier": standing.tier.value,
            "rating": standing.rating,
        }
        put_newer(self._base, self._copies, {"riderId": standing.rider_id}, row, sequence, label="stats")


class DynamoStatsUnitOfWork(ServiceUnitOfWork):
    """The rider-stats projector's unit of work (without markers: its write is idempotent by version)."""

    def __init__(self, base: DynamoUnitOfWork, copies: tuple[str, ...]) -> None:
        super().__init__(base)
        self.stats = DynamoStatsRows(base, copies)


class DynamoRiderStats:
    """Read side: a rider's row in the copy of the rider stats readers use."""

    def __init__(self, dynamodb: DynamoDBClient, stats: Projection) -> None:
        self._dynamodb = dynamodb
        self._stats = stats

    def get(self, rider_id: str) -> Standing:
        return self._stats.read(lambda generation: self._get(generation, rider_id))

    def _get(self, generation: int, rider_id: str) -> Standing:
        item = on_copy(
            self._dynamodb.get_item,
            TableName=copy_name(RIDER_STATS, generation),
            Key=dynamo.to_item({"riderId": rider_id}),
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return Standing(rider_id)
        row = dynamo.from_item(item)
        return Standing(
            rider_id, int(row["rideCount"]), int(row["points"]), Tier(row["tier"]), float(row["rating"])
        )
