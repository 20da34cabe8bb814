"""The rebuild of a projection with fakes: claim, fresh copy, dual writes, catch-up, switch, drop, failure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from acr.metrics import LagWindow
from acr.projection_store import copies_written
from acr.projections import (
    STALE_AFTER_S,
    CopyMissing,
    Pointer,
    Projection,
    Projections,
    ProjectionState,
    Rebuild,
    RebuildInProgress,
    UnknownProjection,
    copy_name,
)


@dataclass
class FakePointers:
    stored: dict[str, Pointer] = field(default_factory=dict)
    history: list[Pointer] = field(default_factory=list)

    def read(self, name: str) -> Pointer | None:
        return self.stored.get(name)

    def write(self, pointer: Pointer, expected: Pointer | None) -> Pointer | None:
        current = self.stored.get(pointer.name)
        if (current.revision if current else None) != (expected.revision if expected else None):
            return None
        saved = replace(pointer, revision=(expected.revision if expected else 0) + 1)
        self.stored[pointer.name] = saved
        self.history.append(saved)
        return saved


@dataclass
class FakeCopies:
    existing: set[int] = field(default_factory=lambda: {0})
    fail_create: bool = False

    def create(self, generation: int) -> None:
        if self.fail_create:
            raise RuntimeError("no table for you")
        self.existing.add(generation)

    def drop(self, generation: int) -> None:
        self.existing.discard(generation)


@dataclass
class FakeArchive:
    """A replay that completes after ``rounds`` polls; the queue holds ``backlog`` messages until then."""

    rounds: int = 2
    final: str = "COMPLETED"
    replays: list[str] = field(default_factory=list)
    polls: int = 0

    def replay(self, replay_name: str, until: datetime) -> None:  # noqa: ARG002
        self.replays.append(replay_name)

    def replay_state(self, replay_name: str) -> str:  # noqa: ARG002
        self.polls += 1
        return self.final if self.polls > self.rounds else "RUNNING"


@dataclass
class FakeQueue:
    depths: list[int] = field(default_factory=list)

    def pending(self) -> int:
        return self.depths.pop(0) if self.depths else 0


@dataclass
class World:
    pointers: FakePointers = field(default_factory=FakePointers)
    copies: FakeCopies = field(default_factory=FakeCopies)
    archive: FakeArchive = field(default_factory=FakeArchive)
    queue: FakeQueue = field(default_factory=FakeQueue)
    clock: list[float] = field(default_factory=lambda: [1000.0])
    seen_during_sleep: list[Pointer | None] = field(default_factory=list)

    def projection(self) -> Projection:
        return Projection("ride-history", self.pointers, ttl_s=0.0)

    def rebuild(self, owner: str = "rm-1") -> Rebuild:
        def sleep(seconds: float) -> None:
            self.seen_during_sleep.append(self.pointers.read("ride-history"))
            self.clock[0] += seconds

        return Rebuild(
            self.projection(),
            self.pointers,
            self.copies,
            self.archive,
            self.queue,
            owner=owner,
            sleep=sleep,
            now=lambda: self.clock[0],
        )


def test_a_rebuild_fills_a_fresh_copy_then_switches_reads_and_drops_the_old_one() -> None:
    world = World(queue=FakeQueue([3, 1, 0, 2, 0, 0]))
    rebuild = world.rebuild()
    claimed = rebuild.claim()
    assert claimed.state is ProjectionState.REBUILDING and claimed.building is None
    done = rebuild.run()

    assert done.state is ProjectionState.LIVE and done.generation == 1 and done.building is None
    assert world.copies.existing == {1}  # generation 0 dropped after the switch
    assert world.archive.replays == [f"ride-history-g1-{int(1000.0)}"]
    assert done.last_rebuild is not None and done.last_rebuild["status"] == "COMPLETED"
    # while it filled, live writes went to both copies and reads stayed on the old one
    filling = [p for p in world.pointers.history if p.state is ProjectionState.REBUILDING and p.building]
    assert filling and all(p.written == (0, 1) and p.generation == 0 for p in filling)
    # the switch came only after the replay completed and the queue was seen empty twice in a row
    assert world.archive.polls >= 3
    assert world.queue.depths == []


def test_a_switch_waits_for_the_rebuild_queue_to_drain_after_the_replay_completed() -> None:
    world = World(archive=FakeArchive(rounds=0), queue=FakeQueue([5, 0, 4, 0, 0]))
    rebuild = world.rebuild()
    rebuild.claim()
    rebuild.run()
    # 5 (not empty), 0, 4 (the streak restarts), 0, 0: five polls before the switch
    assert world.archive.polls == 5


def test_live_writes_reach_the_fresh_copy_before_the_replay_starts() -> None:
    world = World()
    rebuild = world.rebuild()
    rebuild.claim()
    rebuild.run()
    first_sleep = world.seen_during_sleep[0]
    assert first_sleep is not None and first_sleep.building == 1 and world.archive.replays


def test_a_second_rebuild_is_refused_while_one_is_alive_and_taken_over_when_it_went_silent() -> None:
    world = World()
    world.rebuild("rm-1").claim()
    with pytest.raises(RebuildInProgress):
        world.rebuild("rm-2").claim()
    world.clock[0] += STALE_AFTER_S + 1
    taken = world.rebuild("rm-2").claim()
    assert taken.owner == "rm-2"


def test_a_rebuild_that_lost_its_pointer_stops() -> None:
    world = World()
    first = world.rebuild("rm-1")
    first.claim()
    world.clock[0] += STALE_AFTER_S + 1
    world.rebuild("rm-2").claim()
    with pytest.raises(RebuildInProgress):
        first.run()


@pytest.mark.parametrize("fault", ["replay", "table"])
def test_a_failed_rebuild_leaves_reads_where_they_were(fault: str) -> None:
    world = World(archive=FakeArchive(final="FAILED"), copies=FakeCopies(fail_create=fault == "table"))
    rebuild = world.rebuild()
    rebuild.claim()
    with pytest.raises(RuntimeError):
        rebuild.run()
    pointer = world.pointers.read("ride-history")
    assert pointer is not None and pointer.state is ProjectionState.LIVE and pointer.generation == 0
    assert pointer.building is None and pointer.last_rebuild and pointer.last_rebuild["status"] == "FAILED"
    assert world.copies.existing == {0}


def test_a_read_whose_copy_was_dropped_reads_the_pointer_again() -> None:
    pointers = FakePointers()
    projection = Projection("ride-history", pointers, ttl_s=3600)
    assert projection.pointer().generation == 0  # cached for an hour
    pointers.write(Pointer("ride-history", generation=3), None)
    dropped = {0}

    def query(generation: int) -> str:
        if generation in dropped:
            raise CopyMissing("gone")
        return copy_name("acr-history", generation)

    assert projection.read(query) == "acr-history-g3"
    assert copy_name("acr-history", 0) == "acr-history"


def test_the_registry_lists_state_and_lag_and_refuses_unknown_names() -> None:
    world = World()
    registry = Projections()
    registry.add(world.projection(), world.rebuild)
    listed = registry.describe(lambda name: {"p50": 1.0, "p99": 2.0} if name == "ride-history" else {})
    assert listed == [
        {"name": "ride-history", "state": "LIVE", "lagMs": {"p50": 1.0, "p99": 2.0}, "lastRebuild": None}
    ]
    with pytest.raises(UnknownProjection):
        registry.rebuild("fleet")


def test_the_lag_window_gives_nearest_rank_percentiles_of_recent_events_only() -> None:
    window = LagWindow(window_s=60)
    assert window.percentiles(0) == {"p50": None, "p99": None}
    for i in range(1, 101):
        window.add(float(i), now=0)
    assert window.percentiles(10) == {"p50": 50.0, "p99": 99.0}
    window.add(5000.0, now=100)
    assert window.percentiles(100) == {"p50": 5000.0, "p99": 5000.0}  # the first hundred aged out


def test_live_consumers_write_every_copy_the_pointer_names_and_the_rebuild_queue_only_the_fresh_one() -> None:
    pointers = FakePointers()
    view = Projection("fleet", pointers, ttl_s=0)
    assert copies_written(view, "acr-fleet") == ("acr-fleet",)
    assert copies_written(view, "acr-fleet", rebuilding=True) == ()  # no rebuild: a replay writes nowhere
    pointers.write(Pointer("fleet", generation=1, state=ProjectionState.REBUILDING, building=2), None)
    assert copies_written(view, "acr-fleet") == ("acr-fleet-g1", "acr-fleet-g2")
    assert copies_written(view, "acr-fleet", rebuilding=True) == ("acr-fleet-g2",)
