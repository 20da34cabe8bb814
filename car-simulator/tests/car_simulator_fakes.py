"""In-memory adapters with the same behaviour as the real ones (for fast tests)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from acr.catalog.base import EventData
from acr.leases import Lease
from acr_testkit.memory import MemoryUnitOfWork, MessageStore
from car_simulator.domain import GROUPS, CarCommand, Leg, Point, Snapshot, straight_leg
from car_simulator.ports import Fenced


def lease(group: str, token: int = 1, owner: str = "replica-1") -> Lease:
    return Lease(group, owner, token, expires_at=1e12)


@dataclass
class CarTables(MessageStore):
    """The inbox's markers, the cars table (each row a snapshot, as the DynamoDB row holds it), the
    groups' mailboxes and, for the fence, who holds each group's lease now (every group held by
    ``replica-1`` with token 1 unless a test changes it)."""

    cars: dict[str, Snapshot] = field(default_factory=dict)
    mailboxes: dict[str, list[CarCommand]] = field(default_factory=dict)
    holders: dict[str, tuple[str, int]] = field(
        default_factory=lambda: dict.fromkeys(GROUPS, ("replica-1", 1))
    )
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


def _holds(tables: CarTables, lease: Lease) -> bool:
    return tables.holders.get(lease.key) == (lease.owner, lease.token)


class MemoryCommands:
    def __init__(self, uow: MemoryCarUnitOfWork) -> None:
        self._uow = uow

    def post(self, command: CarCommand) -> None:
        mailboxes = self._uow.tables.mailboxes
        self._uow.stage(lambda: None, lambda: mailboxes.setdefault(command.group, []).append(command))

    def done(self, command: CarCommand) -> None:
        mailboxes = self._uow.tables.mailboxes

        def first() -> str | None:
            pending = mailboxes.get(command.group, [])
            return None if pending and pending[0].command_id == command.command_id else "command"

        def remove() -> None:
            del mailboxes[command.group][0]

        self._uow.stage(first, remove)


class MemoryCarUnitOfWork(MemoryUnitOfWork):
    """The marker and the commands it posts, or a command's removal, the car's row and the fence, all
    committed together; like the service's DynamoDB unit of work, it has no outbox to record events in."""

    def __init__(self, tables: CarTables) -> None:
        super().__init__(tables)
        self.tables = tables
        self.cars = self
        self.commands = MemoryCommands(self)

    def record(self, data: EventData, *, subject: str | None, sequence: int | None = None) -> None:
        raise RuntimeError("this service has no outbox")

    def fence(self, lease: Lease) -> None:
        self.stage(lambda: None if _holds(self.tables, lease) else "lease", lambda: None)

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
    """The cars table, the mailboxes and the inbox in memory: units of work for the consumer and the
    applier, progress saves for the saver, rows read back for a gained group."""

    def __init__(self, tables: CarTables | None = None) -> None:
        self.tables = tables or CarTables()

    def unit_of_work(self) -> MemoryCarUnitOfWork:
        return MemoryCarUnitOfWork(self.tables)

    def load(self, car_ids: Iterable[str]) -> list[Snapshot]:
        wanted = set(car_ids)
        return [_stored(row) for cid, row in sorted(self.tables.cars.items()) if cid in wanted]

    def load_all(self) -> list[Snapshot]:
        return [_stored(row) for _, row in sorted(self.tables.cars.items())]

    def save_progress(self, snapshot: Snapshot, lease: Lease) -> bool:
        if self.tables.unreachable:
            raise ConnectionError("the store cannot be reached")
        if not _holds(self.tables, lease):
            raise Fenced(lease.key)
        car = snapshot.car
        if not _at(self.tables.cars, car.car_id, car.version):
            return False
        self.tables.progress_writes += 1
        self.tables.cars[car.car_id] = _stored(snapshot)
        return True

    def pending(self, groups: Iterable[str]) -> dict[str, list[CarCommand]]:
        mailboxes = self.tables.mailboxes
        return {group: list(mailboxes[group]) for group in groups if mailboxes.get(group)}

    def post(self, command: CarCommand) -> None:
        self.tables.mailboxes.setdefault(command.group, []).append(command)


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
