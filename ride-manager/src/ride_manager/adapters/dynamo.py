"""DynamoDB adapters: repositories that stage writes in the unit of work's single transaction."""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from acr import dynamo
from acr.catalog.base import Place
from acr.unit_of_work import DynamoUnitOfWork, ServiceUnitOfWork
from ride_manager.domain import Quote, Ride, RideStatus
from ride_manager.ports import IdempotencyRecord
from ride_manager.snapshot import ride_from_json, stored_ride
from ride_manager.topology import AWAITING_CAR, IDEMPOTENCY, QUOTES, RIDE_HISTORY, RIDE_VERSIONS, RIDES

QUOTE_PURGE_GRACE_S = 86_400


class DynamoRides:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, ride_id: str) -> Ride | None:
        item = dynamo.get(self._base.dynamodb, RIDES, {"rideId": ride_id})
        return ride_from_json(json.loads(item["ride"])) if item else None

    def add(self, ride: Ride) -> None:
        self._put(ride, "attribute_not_exists(rideId)", {})

    def save(self, ride: Ride, expected_version: int) -> None:
        """Optimistic concurrency: only if nobody wrote ``expected_version`` + 1 first."""
        self._put(ride, "version = :expected", {":expected": expected_version})

    def _put(self, ride: Ride, condition: str, values: dict[str, Any]) -> None:
        doc = json.dumps(stored_ride(ride))
        awaiting = "Y" if ride.status == RideStatus.REQUESTED else None  # sparse index of rides without a car
        self._base.tx.put(
            RIDES,
            {
                "rideId": ride.ride_id,
                "riderId": ride.rider_id,
                "requestedAt": ride.requested_at,
                "status": ride.status.value,
                "version": ride.version,
                "ride": doc,
                "awaitingCar": awaiting,
            },
            label="ride",
            condition=condition,
            values=values or None,
        )
        self._base.tx.put(
            RIDE_VERSIONS,
            {"rideId": ride.ride_id, "version": ride.version, "ride": doc},
            label="ride-version",
            condition="attribute_not_exists(version)",
        )


class DynamoQuotes:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, quote_id: str) -> Quote | None:
        item = dynamo.get(self._base.dynamodb, QUOTES, {"quoteId": quote_id})
        if item is None:
            return None
        return Quote(
            quote_id=item["quoteId"],
            rider_id=item["riderId"],
            pickup=Place.model_validate_json(item["pickup"]),
            dropoff=Place.model_validate_json(item["dropoff"]),
            pickup_eta_s=float(item["pickupEtaS"]),
            trip_duration_s=float(item["tripDurationS"]),
            distance_m=float(item["distanceM"]),
            fare=Decimal(item["fare"]),
            expires_at=datetime.fromisoformat(item["expiresAt"]),
            ride_id=item.get("rideId"),
        )

    def add(self, quote: Quote) -> None:
        self._base.tx.put(
            QUOTES,
            {
                "quoteId": quote.quote_id,
                "riderId": quote.rider_id,
                "pickup": quote.pickup.model_dump_json(),
                "dropoff": quote.dropoff.model_dump_json(),
                "pickupEtaS": quote.pickup_eta_s,
                "tripDurationS": quote.trip_duration_s,
                "distanceM": quote.distance_m,
                "fare": str(quote.fare),
                "expiresAt": quote.expires_at.isoformat(),
                "purgeAt": int(quote.expires_at.timestamp() + QUOTE_PURGE_GRACE_S),
            },
            label="quote",
            condition="attribute_not_exists(quoteId)",
        )

    def mark_used(self, quote: Quote, ride_id: str) -> None:
        """A quote books at most one ride."""
        self._base.tx.update(
            QUOTES,
            {"quoteId": quote.quote_id},
            "SET rideId = :ride",
            label="quote",
            condition="attribute_exists(quoteId) AND attribute_not_exists(rideId)",
            values={":ride": ride_id},
        )


class DynamoIdempotencyKeys:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    @staticmethod
    def _key(rider_id: str, key: str) -> str:
        return f"{rider_id}#{key}"

    def get(self, rider_id: str, key: str) -> IdempotencyRecord | None:
        item = dynamo.get(self._base.dynamodb, IDEMPOTENCY, {"key": self._key(rider_id, key)})
        if item is None or item["expiresAt"] < time.time():
            return None
        return IdempotencyRecord(rider_id, key, item["bodyHash"], item["rideId"])

    def claim(self, record: IdempotencyRecord, ttl_s: float) -> None:
        now = time.time()
        self._base.tx.put(
            IDEMPOTENCY,
            {
                "key": self._key(record.rider_id, record.key),
                "bodyHash": record.body_hash,
                "rideId": record.ride_id,
                "expiresAt": int(now + ttl_s),
            },
            label="idempotency",
            condition="attribute_not_exists(#k) OR expiresAt < :now",
            names={"#k": "key"},
            values={":now": int(now)},
        )


class DynamoRideUnitOfWork(ServiceUnitOfWork):
    """The ride context's unit of work on DynamoDB."""

    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.rides = DynamoRides(base)
        self.quotes = DynamoQuotes(base)
        self.keys = DynamoIdempotencyKeys(base)


class DynamoRideHistory:
    """Read side: the ride history projection, the ride-versions table, rides awaiting a car."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def rides_of(
        self, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the rider's rides from the history projection, newest first."""
        kwargs: dict[str, Any] = {
            "TableName": RIDE_HISTORY,
            "KeyConditionExpression": "riderId = :r",
            "ExpressionAttributeValues": dynamo.to_item({":r": rider_id}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = json.loads(cursor)
        page = self._dynamodb.query(**kwargs)
        rides = [json.loads(dynamo.from_item(i)["ride"]) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return rides, json.dumps(last) if last else None

    def versions(self, ride_id: str, after_version: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": RIDE_VERSIONS,
            "KeyConditionExpression": "rideId = :r AND version > :v",
            "ExpressionAttributeValues": dynamo.to_item({":r": ride_id, ":v": after_version}),
            "ConsistentRead": True,
        }
        versions: list[dict[str, Any]] = []
        while True:
            page = self._dynamodb.query(**kwargs)
            versions += [_public(json.loads(dynamo.from_item(i)["ride"])) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return versions
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active(self) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": RIDES,
            "FilterExpression": "#s IN (:a, :b, :c, :d)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": dynamo.to_item(
                {":a": "REQUESTED", ":b": "CAR_ASSIGNED", ":c": "CAR_ARRIVED", ":d": "IN_PROGRESS"}
            ),
        }
        rides: list[dict[str, Any]] = []
        while True:
            page = self._dynamodb.scan(**kwargs)
            rides += [_public(json.loads(dynamo.from_item(i)["ride"])) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(rides, key=lambda r: r["requestedAt"], reverse=True)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def awaiting_car(self, limit: int) -> list[tuple[str, str]]:
        page = self._dynamodb.query(
            TableName=RIDES,
            IndexName=AWAITING_CAR,
            KeyConditionExpression="awaitingCar = :y",
            ExpressionAttributeValues=dynamo.to_item({":y": "Y"}),
            ProjectionExpression="rideId, requestedAt",
            Limit=limit,
        )
        rows = [dynamo.from_item(i) for i in page.get("Items", [])]
        return [(str(row["rideId"]), str(row["requestedAt"])) for row in rows]


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    doc.pop("quotedDistanceMeters", None)
    doc.pop("quotedDurationSeconds", None)
    return doc
