"""DynamoDB adapters: repositories that stage writes in the unit of work's single transaction, and the
read side (ride history, versions, active rides, the rides' deadlines).

A ride is stored as its public JSON (``snapshot.ride_to_json``) plus what only this service reads (the
quote figures the fare rules need, the deadline, a stalled car, the payment's sequence); this module maps
that document and the quote items to and from the domain's types.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from acr import clock, dynamo, tracing
from acr.catalog.base import Place
from acr.catalog.ride import CancellationReason, RideUpdated
from acr.dynamo import DynamoUnitOfWork, ServiceUnitOfWork
from acr.money import Money
from acr.projection_store import on_copy, put_newer
from acr.projections import Projection, copy_name
from ride_manager.domain import (
    Cancellation,
    Payment,
    PaymentStatus,
    Quote,
    Ride,
    RideStatus,
    TimelineEntry,
)
from ride_manager.ports import IdempotencyRecord
from ride_manager.snapshot import in_flight, ride_to_json
from ride_manager.topology import (
    DEADLINES,
    IDEMPOTENCY,
    IN_FLIGHT,
    QUOTES,
    RIDE_HISTORY,
    RIDE_VERSIONS,
    RIDES,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

QUOTE_PURGE_GRACE_S = 86_400
PRIVATE = (
    "quotedDistanceMeters",
    "quotedDurationSeconds",
    "deadlineAt",
    "stalledCarId",
    "paymentSequence",
    "carSequence",
)


# --- the stored ride document ------------------------------------------------------------------------
def ride_document(ride: Ride) -> dict[str, Any]:
    """The public JSON plus the ``PRIVATE`` fields."""
    return ride_to_json(ride) | {
        "quotedDistanceMeters": ride.quoted_distance_m,
        "quotedDurationSeconds": ride.quoted_duration_s,
        "deadlineAt": clock.iso(ride.deadline) if ride.deadline else None,
        "stalledCarId": ride.stalled_car_id,
        "paymentSequence": ride.payment.sequence if ride.payment else None,
        "carSequence": ride.car_sequence,
    }


def _cancellation(doc: dict[str, Any] | None) -> Cancellation | None:
    if doc is None:
        return None
    fee = Money.model_validate(doc["fee"]) if doc.get("fee") else None
    return Cancellation(CancellationReason(doc["reason"]), fee, clock.parse(doc["at"]))


def _payment(doc: dict[str, Any] | None, sequence: int | None) -> Payment | None:
    if doc is None:
        return None
    return Payment(
        PaymentStatus(doc["status"]), doc["paymentId"], Money.model_validate(doc["amount"]), sequence
    )


def _step(doc: dict[str, Any]) -> TimelineEntry:
    return TimelineEntry(RideStatus(doc["status"]), clock.parse(doc["at"]), doc.get("carId"))


def ride_from_document(doc: dict[str, Any]) -> Ride:
    """Inverse of ``ride_document``."""
    return Ride(
        ride_id=doc["rideId"],
        rider_id=doc["riderId"],
        pickup=Place.model_validate(doc["pickup"]),
        dropoff=Place.model_validate(doc["dropoff"]),
        quoted_fare=Decimal(doc["quotedFare"]["amount"]),
        quoted_distance_m=float(doc.get("quotedDistanceMeters", 0)),
        quoted_duration_s=float(doc.get("quotedDurationSeconds", 0)),
        requested_at=clock.parse(doc["requestedAt"]),
        updated_at=clock.parse(doc["updatedAt"]),
        status=RideStatus(doc["status"]),
        version=int(doc["version"]),
        car_id=doc.get("carId"),
        fare=Decimal(doc["fare"]["amount"]) if doc.get("fare") else None,
        distance_m=doc.get("distanceMeters"),
        duration_s=doc.get("durationSeconds"),
        pickup_eta_s=doc.get("pickupEtaSeconds"),
        arrival_eta_s=doc.get("arrivalEtaSeconds"),
        cancellation=_cancellation(doc.get("cancellation")),
        payment=_payment(doc.get("payment"), doc.get("paymentSequence")),
        points_earned=doc.get("pointsEarned"),
        timeline=[_step(t) for t in doc.get("timeline", [])],
        deadline=clock.parse(doc["deadlineAt"]) if doc.get("deadlineAt") else None,
        stalled_car_id=doc.get("stalledCarId"),
        # a ride stored before CarAssigned was sequenced: None (anything goes) once it had a car
        car_sequence=doc["carSequence"] if "carSequence" in doc else (None if doc.get("carId") else 0),
    )


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    for name in PRIVATE:
        doc.pop(name, None)
    return doc


# --- the write model ---------------------------------------------------------------------------------
def _history_cursor(cursor: str, rider_id: str) -> dict[str, Any]:
    """The history key a page of ``rider_id``'s rides starts after; ``ValueError`` when ``cursor`` is not one
    this store handed out for that rider (any other JSON would reach DynamoDB as a malformed key)."""
    try:
        key = json.loads(cursor)
    except RecursionError as exc:  # "[[[[..." nested deeper than the parser goes
        raise ValueError("not a ride history cursor") from exc
    if not (isinstance(key, dict) and set(key) == {"riderId", "requested"}):
        raise ValueError("not a ride history cursor")
    if key["riderId"] != {"S": rider_id} or not (
        isinstance(key["requested"], dict)
        and set(key["requested"]) == {"S"}
        and isinstance(key["requested"]["S"], str)
    ):
        raise ValueError("not a cursor of this rider's rides")
    return key


class DynamoRides:
    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    def get(self, ride_id: str) -> Ride | None:
        item = dynamo.get(self._base.dynamodb, RIDES, {"rideId": ride_id})
        # a rider's holds share the table (``DynamoActiveRideHolds``) and are no ride
        if not item or "ride" not in item:
            return None
        tracing.resume_stored(ride_id, item)  # the watchdog's events continue the ride's trace
        return ride_from_document(json.loads(item["ride"]))

    def add(self, ride: Ride) -> None:
        self._put(ride, "attribute_not_exists(rideId)", {})

    def save(self, ride: Ride, expected_version: int) -> None:
        """Optimistic concurrency: only if nobody wrote ``expected_version`` + 1 first."""
        self._put(ride, "version = :expected", {":expected": expected_version})

    def touch(self, ride: Ride) -> None:
        """The ride row at its own version, and no new version. A save that read the ride before still
        passes its condition and writes over it: every save enters a new state or takes a new car, which
        sets a new deadline and leaves an earlier car's stall behind."""
        self._put(ride, "version = :expected", {":expected": ride.version}, versioned=False)

    def _put(self, ride: Ride, condition: str, values: dict[str, Any], versioned: bool = True) -> None:
        doc = json.dumps(ride_document(ride))
        self._base.tx.put(
            RIDES,
            {
                "rideId": ride.ride_id,
                "riderId": ride.rider_id,
                "requestedAt": clock.iso(ride.requested_at),
                "status": ride.status.value,
                "version": ride.version,
                "ride": doc,
                "due": "Y" if ride.deadline else None,  # the sparse index of the rides with a deadline
                "deadlineAt": clock.iso(ride.deadline) if ride.deadline else None,
            }
            | tracing.stored_context(ride.ride_id),  # any process reading the row continues the trace
            label="ride",
            condition=condition,
            values=values or None,
        )
        if not versioned:
            return
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
            expires_at=clock.parse(item["expiresAt"]),
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
                "expiresAt": clock.iso(quote.expires_at),
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


class DynamoActiveRideHolds:
    """One item per rider in the rides table (key ``rider#<riderId>``, neither ``inFlight`` nor ``due``, so
    neither sparse index sees it) with the string set ``activeRideIds``. Booking adds to the
    set under the condition that it is smaller than the cap, in the booking's own transaction; a ride's end
    deletes from it (adding or deleting a set member twice changes nothing, so a retried commit is safe)."""

    def __init__(self, base: DynamoUnitOfWork) -> None:
        self._base = base

    @staticmethod
    def _key(rider_id: str) -> dict[str, str]:
        return {"rideId": f"rider#{rider_id}"}

    def count(self, rider_id: str) -> int:
        item = dynamo.get(self._base.dynamodb, RIDES, self._key(rider_id))
        return len(item.get("activeRideIds", ())) if item else 0

    def hold(self, rider_id: str, ride_id: str, cap: int) -> None:
        self._base.tx.update(
            RIDES,
            self._key(rider_id),
            "ADD activeRideIds :ride",
            label="active-rides",
            condition="attribute_not_exists(activeRideIds) OR size(activeRideIds) < :cap",
            values={":ride": {ride_id}, ":cap": cap},
        )

    def release(self, rider_id: str, ride_id: str) -> None:
        self._base.tx.update(
            RIDES,
            self._key(rider_id),
            "DELETE activeRideIds :ride",
            label="active-rides",
            values={":ride": {ride_id}},
        )


class DynamoRideUnitOfWork(ServiceUnitOfWork):
    """The ride context's unit of work on DynamoDB."""

    def __init__(self, base: DynamoUnitOfWork) -> None:
        super().__init__(base)
        self.rides = DynamoRides(base)
        self.quotes = DynamoQuotes(base)
        self.keys = DynamoIdempotencyKeys(base)
        self.active_rides = DynamoActiveRideHolds(base)


# --- the ride history read model ---------------------------------------------------------------------
def _history_key(snapshot: RideUpdated) -> dict[str, str]:
    return {"riderId": snapshot.rider_id, "requested": f"{snapshot.ride['requestedAt']}#{snapshot.ride_id}"}


class DynamoHistoryRows:
    """Writes to the copies of the history a snapshot goes to: the one read and, during a rebuild, the
    fresh one (``acr.projections``); the rebuild queue's consumer writes to the fresh one only."""

    def __init__(self, base: DynamoUnitOfWork, copies: tuple[str, ...]) -> None:
        self._base = base
        self._copies = copies

    def put_if_newer(self, snapshot: RideUpdated, sequence: int) -> None:
        row = {
            "rideId": snapshot.ride_id,
            "ride": json.dumps(snapshot.ride),
            "requestedAt": snapshot.ride["requestedAt"],
            "inFlight": "Y" if in_flight(snapshot) else None,  # the sparse index of the rides in flight
        }
        put_newer(self._base, self._copies, _history_key(snapshot), row, sequence, label="history")


class DynamoHistoryUnitOfWork(ServiceUnitOfWork):
    """The ride history projector's unit of work (without markers: its write is idempotent by version)."""

    def __init__(self, base: DynamoUnitOfWork, copies: tuple[str, ...]) -> None:
        super().__init__(base)
        self.history = DynamoHistoryRows(base, copies)


class DynamoRideHistory:
    """Read side: the ride history projection, the ride-versions table, the rides' deadlines."""

    def __init__(self, dynamodb: DynamoDBClient, history: Projection) -> None:
        self._dynamodb = dynamodb
        self._history = history

    def rides_of(
        self, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        """A page of the rider's rides from the copy of the history readers use, newest first."""
        return self._history.read(lambda generation: self._rides_of(generation, rider_id, limit, cursor))

    def _rides_of(
        self, generation: int, rider_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": copy_name(RIDE_HISTORY, generation),
            "KeyConditionExpression": "riderId = :r",
            "ExpressionAttributeValues": dynamo.to_item({":r": rider_id}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _history_cursor(cursor, rider_id)
        page = on_copy(self._dynamodb.query, **kwargs)
        rides = [json.loads(dynamo.from_item(i)["ride"]) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return rides, json.dumps(last) if last else None

    def versions(self, ride_id: str, after_version: int) -> list[dict[str, object]]:
        kwargs: dict[str, Any] = {
            "TableName": RIDE_VERSIONS,
            "KeyConditionExpression": "rideId = :r AND version > :v",
            "ExpressionAttributeValues": dynamo.to_item({":r": ride_id, ":v": after_version}),
            "ConsistentRead": True,
        }
        versions: list[dict[str, object]] = []
        while True:
            page = self._dynamodb.query(**kwargs)
            versions += [_public(json.loads(dynamo.from_item(i)["ride"])) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return versions
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active(self) -> list[dict[str, object]]:
        """From the sparse index of the rides in flight in the copy of the history readers use: a ride
        leaves it with the snapshot that completes or cancels it, so the read costs what is in flight, never
        the whole table."""
        return self._history.read(self._active)

    def _active(self, generation: int) -> list[dict[str, object]]:
        kwargs: dict[str, Any] = {
            "TableName": copy_name(RIDE_HISTORY, generation),
            "IndexName": IN_FLIGHT,
            "KeyConditionExpression": "inFlight = :y",
            "ExpressionAttributeValues": dynamo.to_item({":y": "Y"}),
            "ScanIndexForward": False,
        }
        rides: list[dict[str, Any]] = []
        while True:
            page = on_copy(self._dynamodb.query, **kwargs)
            rides += [json.loads(dynamo.from_item(i)["ride"]) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return rides
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def deadlines(self, limit: int) -> list[tuple[str, datetime]]:
        page = self._dynamodb.query(
            TableName=RIDES,
            IndexName=DEADLINES,
            KeyConditionExpression="#due = :y",
            ExpressionAttributeNames={"#due": "due"},
            ExpressionAttributeValues=dynamo.to_item({":y": "Y"}),
            ProjectionExpression="rideId, deadlineAt",
            Limit=limit,
        )
        rows = [dynamo.from_item(i) for i in page.get("Items", [])]
        return [(str(row["rideId"]), clock.parse(str(row["deadlineAt"]))) for row in rows]
