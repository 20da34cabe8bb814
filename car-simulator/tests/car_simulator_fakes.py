"""In-memory adapters with the same behaviour as the real ones (for fast tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acr.catalog.base import EventData
from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from car_simulator.domain import Leg, Point, straight_leg


class MemoryInboxUnitOfWork(MemoryUnitOfWork):
    """Markers only: like the service's DynamoDB unit of work, it has no outbox to record events in."""

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        raise RuntimeError("this service has no outbox")


class MemoryInbox:
    """A factory of in-memory units of work sharing one set of markers (like the DynamoDB inbox)."""

    def __init__(self) -> None:
        self.store = MessageStore()

    def __call__(self) -> MemoryInboxUnitOfWork:
        return MemoryInboxUnitOfWork(self.store)


class StraightRoads:
    """Straight lines at a fixed speed instead of the street graph."""

    def __init__(self, speed_ms: float = 10.0) -> None:
        self.speed_ms = speed_ms

    def leg(self, start: Point, end: Point) -> Leg:
        return straight_leg(start, end, self.speed_ms)


@dataclass
class FakeKinesis:
    """Records ``put_records`` calls; ``fail`` lists, per call, the indexes to reject (or an exception)."""

    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    fail: list[set[int] | Exception] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(list(Records))
        plan = self.fail.pop(0) if self.fail else set()
        if isinstance(plan, Exception):
            raise plan
        self.delivered += [record for i, record in enumerate(Records) if i not in plan]
        out = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
            if i in plan
            else {"SequenceNumber": str(i), "ShardId": "shardId-000000000000"}
            for i in range(len(Records))
        ]
        return {"FailedRecordCount": len(plan), "Records": out}
