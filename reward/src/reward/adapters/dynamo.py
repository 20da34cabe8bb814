"""Loyalty read from DynamoDB."""

from __future__ import annotations

from typing import Any

from acr import dynamo
from reward.domain import MAX_RATING, Loyalty


class DynamoLoyaltyView:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def get(self, rider_id: str) -> Loyalty:
        item = dynamo.get(self._dynamodb, self._table, {"riderId": rider_id})
        if item is None:
            return Loyalty(rider_id)
        return Loyalty(rider_id, int(item.get("rideCount", 0)), int(item.get("points", 0)),
                       float(item.get("rating", MAX_RATING)), int(item.get("version", 0)))
