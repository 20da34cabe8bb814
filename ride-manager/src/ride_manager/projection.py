"""The ride history read model (CQRS): every rider's rides, built only from ``RideUpdated`` snapshots.

Idempotent by version: a snapshot is written only over an older one, so duplicates and stale
(out-of-order) updates change nothing and are counted as stale. Rebuildable by replaying the topic.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from acr import dynamo
from acr.catalog.base import EventData
from acr.catalog.ride import RideUpdated
from acr.consumer import Stale
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS
from ride_manager.topology import RIDE_HISTORY


class RideHistoryProjector:
    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def __call__(self, event: CloudEvent, data: EventData) -> None:
        if not isinstance(data, RideUpdated):
            return
        ride = data.ride
        try:
            self._dynamodb.put_item(
                TableName=RIDE_HISTORY,
                Item=dynamo.to_item(
                    {
                        "riderId": data.rider_id,
                        "requested": f"{ride['requestedAt']}#{data.ride_id}",
                        "rideId": data.ride_id,
                        "version": data.version,
                        "ride": json.dumps(ride),
                    }
                ),
                ConditionExpression="attribute_not_exists(version) OR version < :v",
                ExpressionAttributeValues=dynamo.to_item({":v": data.version}),
            )
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                raise Stale(f"{data.ride_id} v{data.version} is not newer than the projection") from exc
            raise
        COUNTERS.projection_lag_ms = (time.time() - event.time.timestamp()) * 1000
