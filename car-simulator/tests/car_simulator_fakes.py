"""In-memory adapters with the same behaviour as the real ones (for fast tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acr.catalog.base import EventData
from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from car_simulator.domain import Leg, Point, Snapshot, straight_leg


@dataclass
class CarTables(MessageStore):
    """The inbox's markers and the cars table (each row a snapshot, as the DynamoDB row holds it)."""

    cars: dict[str, Snapshot] = field(default_factory=dict)
    unreachable: bool = False  # every write raises, as when the store cannot be reached
    commits: int = 0  # units of work committed (a marker, and maybe a car's row)
    row_writes: int = 0  # car rows written by commands
    progress_writes: int = 0


def _at(rows: dict[str, Snapshot], car_id: str, version: int) -> bool:
    """The DynamoDB condition: no row yet, or a row at ``version``."""
    row = rows.get(car_id)
    return row is None or row.car.version == version


def _stored(snapshot: Snapshot) -> Snapshot:
    return Snapshot(snapshot.car.copy(), snapshot.sim_time_s)


class MemoryCarUnitOfWork(MemoryUnitOfWork):
    """The marker and the commanded car's row, committed together; like the service's DynamoDB unit of
    work, it has no outbox to record events in."""

    def __init__(self, tables: CarTables) -> None:
        super().__init__(tables)
        self.tables = tables
        self.cars = self

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        raise RuntimeError("this service has no outbox")

    def save(self, snapshot: Snapshot) -> None:
        car_id, rows = snapshot.car.car_id, self.tables.cars
        stored = _stored(snapshot)
        self.stage(
            lambda: None if _at(rows, car_id, snapshot.car.version - 1) else "car",
            lambda: self._write(stored),
        )

    def _write(self, stored: Snapshot) -> None:
        self.tables.cars[stored.car.car_id] = stored
        self.tables.row_writes += 1

    def commit(self) -> None:
        if self.tables.unreachable:
            raise ConnectionError("the store cannot be reached")
        super().commit()
        self.tables.commits += 1


class MemoryCarStore:
    """The cars table and the inbox in memory: units of work for the consumer, progress saves for the
    saver, every row read back for a restarted simulator."""

    def __init__(self, tables: CarTables | None = None) -> None:
        self.tables = tables or CarTables()

    def unit_of_work(self) -> MemoryCarUnitOfWork:
        return MemoryCarUnitOfWork(self.tables)

    def load(self) -> list[Snapshot]:
        return [_stored(row) for row in self.tables.cars.values()]

    def save_progress(self, snapshot: Snapshot) -> bool:
        if self.tables.unreachable:
            raise ConnectionError("the store cannot be reached")
        car = snapshot.car
        if not _at(self.tables.cars, car.car_id, car.version):
            return False
        self.tables.progress_writes += 1
        self.tables.cars[car.car_id] = _stored(snapshot)
        return True


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
