"""The live fleet view read model: every change of a car's state records its whole state
(``FleetCarUpdated``, sequence = the car's version) with the change; the projection writes a car's row
only over an older one, a rebuild's replay writes only the copy being built, and the answer takes the
freshest position this process knows. In memory, then the DynamoDB adapter on moto."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from car_dispatcher_fakes import (
    FleetStore,
    MemoryFleetReadModel,
    MemoryFleetUnitOfWork,
    MemoryFleetViewUnitOfWork,
    StoreFleet,
    StraightRoads,
)

from acr import catalog, clock
from acr.catalog.base import Place
from acr.catalog.fleet import FleetCarUpdated
from acr.catalog.monitoring import TripCompleted, TripStarted
from acr.catalog.ride import RideRequested
from acr.consumer import MessageHandler, PoisonMessage, Stale, idempotent
from acr.envelope import CloudEvent
from acr.metrics import COUNTERS
from acr.money import Money
from acr.projection_store import DynamoCopies, DynamoPointers
from acr.projections import Pointer, Projection
from acr_testkit.aws import in_process_messaging
from car_dispatcher.adapters.dynamo import (
    DynamoFleetReadModel,
    DynamoFleetUnitOfWork,
    DynamoFleetViewUnitOfWork,
    seed_cars,
)
from car_dispatcher.domain import Car, CarState
from car_dispatcher.handlers import DispatchControl, add_cars, handlers
from car_dispatcher.projection import FLEET_VIEW_HANDLERS, REBUILD_HANDLERS, live_fleet
from car_dispatcher.topology import FLEET, PROJECTIONS, TOPOLOGY

AT = datetime(2026, 1, 1, tzinfo=UTC)
PICKUP = Place(label="pickup", lat=60.170, lon=24.940)
DROPOFF = Place(label="dropoff", lat=60.180, lon=24.960)


def _state(
    version: int, car_id: str = "car-1", state: CarState = CarState.AVAILABLE, ride_id: str | None = None
) -> tuple[CloudEvent, FleetCarUpdated]:
    data = FleetCarUpdated(
        car_id=car_id,
        state=state.value,
        ride_id=ride_id,
        lat=60.17,
        lon=round(24.94 + version / 1000, 3),  # each version somewhere else
        version=version,
    )
    return catalog.record(data, subject=car_id, sequence=version), data


def _projector(store: FleetStore, copies: tuple[int, ...] = (0,)) -> MessageHandler:
    return idempotent(lambda: MemoryFleetViewUnitOfWork(store, copies), FLEET_VIEW_HANDLERS)


def _rows(store: FleetStore, generation: int = 0) -> dict[str, tuple[str, str | None, int]]:
    return {c.car_id: (c.state.value, c.ride_id, c.version) for c in store.fleet_view[generation].values()}


# --- what car-dispatcher records --------------------------------------------------------------------------
def test_every_change_of_a_car_records_its_whole_state_at_its_version_in_the_same_commit() -> None:
    store = FleetStore()
    add_cars(lambda: MemoryFleetUnitOfWork(store), [Car("car-1", CarState.AVAILABLE, 60.171, 24.94)])
    fleet = StoreFleet(store)
    table = handlers(roads=StraightRoads(), fleet=fleet, control=DispatchControl(), max_pickup_eta_s=900)
    consume = idempotent(lambda: MemoryFleetUnitOfWork(store), table)
    requested = RideRequested(
        ride_id="ride_1",
        rider_id="rdr",
        pickup=PICKUP,
        dropoff=DROPOFF,
        quoted_fare=Money.of(5),
        quoted_distance_meters=1,
        quoted_duration_seconds=1,
        requested_at=AT,
    )
    for data in (
        requested,
        TripStarted(ride_id="ride_1", car_id="car-1", at=AT),
        TripCompleted(ride_id="ride_1", car_id="car-1", distance_meters=100, duration_seconds=10, at=AT),
    ):
        consume(catalog.record(data, subject="ride_1"), data)
    states = [o.event for o in store.outbox if o.event.type.endswith(".FleetCarUpdated")]
    assert [(e.subject, e.sequence, e.data["state"], e.data["rideId"]) for e in states] == [
        ("car-1", 0, "AVAILABLE", None),  # seeded
        ("car-1", 1, "RESERVED", "ride_1"),
        ("car-1", 2, "ON_TRIP", "ride_1"),
        ("car-1", 3, "AVAILABLE", None),
    ]
    assert all((e.data["lat"], e.data["lon"]) == (60.171, 24.94) for e in states)
    assert store.cars["car-1"].version == 3


# --- the projection -------------------------------------------------------------------------------------
def test_a_newer_state_overwrites_and_the_same_or_an_older_one_is_stale() -> None:
    store = FleetStore()
    project = _projector(store)
    project(*_state(0))
    project(*_state(2, state=CarState.ON_TRIP, ride_id="ride_1"))
    for version in (2, 1, 0):  # a duplicate and two late arrivals change nothing
        with pytest.raises(Stale):
            project(*_state(version, state=CarState.OUT_OF_SERVICE))
    assert _rows(store) == {"car-1": ("ON_TRIP", "ride_1", 2)}
    assert store.markers == set()  # idempotent by version: no markers


def test_the_cloudevent_sequence_decides_not_the_payload() -> None:
    store = FleetStore()
    project = _projector(store)
    project(*_state(3, state=CarState.RESERVED, ride_id="ride_1"))
    _, late = _state(9, state=CarState.OUT_OF_SERVICE)
    with pytest.raises(Stale):
        project(catalog.record(late, subject="car-1", sequence=2), late)
    assert _rows(store) == {"car-1": ("RESERVED", "ride_1", 3)}


@pytest.mark.parametrize("seed", range(6))
def test_in_any_order_with_resends_each_car_ends_at_its_newest_state(seed: int) -> None:
    rng = random.Random(seed)
    store = FleetStore()
    project = _projector(store)
    deliveries = [_state(v, car_id=f"car-{c}") for c in range(3) for v in range(5)]
    deliveries += rng.sample(deliveries, 4)
    rng.shuffle(deliveries)
    for event, data in deliveries:
        try:
            project(event, data)
        except Stale:
            pass
    assert {car: row[2] for car, row in _rows(store).items()} == {f"car-{c}": 4 for c in range(3)}


def test_the_projector_handles_car_states_only() -> None:
    store = FleetStore()
    data = TripStarted(ride_id="ride_1", car_id="car-1", at=AT)
    with pytest.raises(PoisonMessage):
        _projector(store)(catalog.record(data, subject="ride_1"), data)
    assert _rows(store) == {}


def test_the_lag_is_measured_when_a_state_is_stored_and_never_for_a_replayed_one() -> None:
    store = FleetStore()
    event, data = _state(1)
    old = CloudEvent.model_validate(event.model_dump() | {"time": clock.parse("2026-01-01T00:00:00Z")})
    COUNTERS.projection_lag_ms = 0.0
    _projector(store)(old, data)
    assert COUNTERS.projection_lag_ms > 1000  # stamped long ago
    COUNTERS.projection_lag_ms = 0.0
    with pytest.raises(Stale):
        _projector(store)(old.resent(), data)
    store.fleet_view[1] = {}
    idempotent(lambda: MemoryFleetViewUnitOfWork(store, (1,)), REBUILD_HANDLERS)(old, data)
    assert COUNTERS.projection_lag_ms == 0.0 and _rows(store, 1) == {"car-1": ("AVAILABLE", None, 1)}


def test_during_a_rebuild_live_states_go_to_both_copies_and_the_replay_only_to_the_fresh_one() -> None:
    store = FleetStore()
    store.fleet_view[1] = {}
    live = _projector(store, copies=(0, 1))
    replay = idempotent(lambda: MemoryFleetViewUnitOfWork(store, (1,)), REBUILD_HANDLERS)
    live(*_state(4, car_id="car-1", state=CarState.RESERVED, ride_id="ride_9"))
    replay(*_state(0, car_id="car-2"))  # an old state from the archive
    with pytest.raises(Stale):
        replay(*_state(3, car_id="car-1"))  # overtaken by the live one in the fresh copy too
    assert _rows(store, 0) == {"car-1": ("RESERVED", "ride_9", 4)}
    assert _rows(store, 1) == {"car-1": ("RESERVED", "ride_9", 4), "car-2": ("AVAILABLE", None, 0)}
    nothing_to_build = idempotent(lambda: MemoryFleetViewUnitOfWork(store, ()), REBUILD_HANDLERS)
    nothing_to_build(*_state(1, car_id="car-3"))  # a replay with no rebuild running writes nowhere
    assert "car-3" not in _rows(store, 0) and "car-3" not in _rows(store, 1)


def test_the_answer_takes_the_position_this_process_knows_else_the_events() -> None:
    store = FleetStore()
    _projector(store)(*_state(1, car_id="car-1"))
    _projector(store)(*_state(1, car_id="car-2"))
    store.cars["car-1"] = Car("car-1", CarState.AVAILABLE, 60.2, 24.9)  # what telemetry says of car-1
    answer = {c.car_id: (c.lat, c.lon) for c in live_fleet(MemoryFleetReadModel(store), StoreFleet(store))}
    assert answer == {"car-1": (60.2, 24.9), "car-2": (60.17, 24.941)}


# --- the DynamoDB adapter -------------------------------------------------------------------------------
def test_on_dynamodb_the_view_is_written_over_older_versions_only_and_read_through_the_pointer() -> None:
    with in_process_messaging(TOPOLOGY) as messaging:
        dynamodb = messaging.dynamodb
        unit_of_work = lambda: DynamoFleetUnitOfWork(messaging.unit_of_work())  # noqa: E731
        assert seed_cars(dynamodb, unit_of_work, []) == 0
        view = Projection("fleet", DynamoPointers(dynamodb, PROJECTIONS), ttl_s=0)
        read = DynamoFleetReadModel(dynamodb, view)

        def project(copies: tuple[str, ...], event: CloudEvent, data: FleetCarUpdated) -> None:
            idempotent(
                lambda: DynamoFleetViewUnitOfWork(messaging.unit_of_work(marked=False), copies),
                FLEET_VIEW_HANDLERS,
            )(event, data)

        project((FLEET,), *_state(0, car_id="car-1"))
        project((FLEET,), *_state(2, car_id="car-1", state=CarState.ON_TRIP, ride_id="ride_1"))
        project((FLEET,), *_state(0, car_id="car-2"))
        with pytest.raises(Stale):
            project((FLEET,), *_state(1, car_id="car-1"))
        assert [(c.car_id, c.state, c.ride_id, c.version) for c in read.cars()] == [
            ("car-1", CarState.ON_TRIP, "ride_1", 2),
            ("car-2", CarState.AVAILABLE, None, 0),
        ]

        fresh = f"{FLEET}-g1"  # a rebuild's copy, then the switch to it and the drop of the old one
        copies = DynamoCopies(dynamodb, next(t for t in TOPOLOGY.tables if t.name == FLEET))
        copies.create(1)
        project((fresh,), *_state(5, car_id="car-3"))
        DynamoPointers(dynamodb, PROJECTIONS).write(Pointer("fleet", generation=1), None)
        copies.drop(0)
        assert [(c.car_id, c.version) for c in read.cars()] == [("car-3", 5)]
