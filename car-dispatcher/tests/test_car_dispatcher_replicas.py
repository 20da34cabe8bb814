"""Two car-dispatcher replicas on one cars table (DynamoDB on in-process moto where the conditional
reservation matters): each keeps a view of the whole fleet (watched positions, the table read back),
never takes a car back to an older version, and never reserves one car for two rides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from car_dispatcher_fakes import StraightRoads

from acr import catalog
from acr.catalog.base import Place
from acr.catalog.car import CarPhase, CarTelemetry
from acr.catalog.ride import RideRequested
from acr.consumer import idempotent
from acr.fleet import FleetCar
from acr.money import Money
from acr.runtime import Messaging
from acr.stream import StreamRecord
from acr_city import Bounds
from acr_testkit.aws import in_process_messaging
from car_dispatcher.adapters.dynamo import DynamoAssignments, DynamoFleetUnitOfWork, all_cars, seed_cars
from car_dispatcher.adapters.fleet_view import LiveFleet
from car_dispatcher.domain import Car, CarState
from car_dispatcher.handlers import DispatchControl, handlers
from car_dispatcher.telemetry import FleetSync, moved
from car_dispatcher.topology import TOPOLOGY

AT = datetime(2026, 1, 1, tzinfo=UTC)
PICKUP = Place(label="pickup", lat=60.170, lon=24.940)
BOUNDS = Bounds(24.5, 60.0, 25.5, 60.5)
FLEET = [FleetCar("car-1", 60.171, 24.94), FleetCar("car-2", 60.175, 24.94)]


def _requested(ride_id: str) -> RideRequested:
    return RideRequested(
        ride_id=ride_id,
        rider_id="rdr",
        pickup=PICKUP,
        dropoff=Place(label="dropoff", lat=60.18, lon=24.96),
        quoted_fare=Money.of(5),
        quoted_distance_meters=1,
        quoted_duration_seconds=1,
        requested_at=AT,
    )


class RacedUnitOfWork(DynamoFleetUnitOfWork):
    """Runs ``before`` (another replica's work) right before this unit of work commits."""

    def __init__(self, messaging: Messaging, before: Callable[[], None]) -> None:
        super().__init__(messaging.unit_of_work())
        self._before = before

    def commit(self) -> None:
        self._before()
        super().commit()


class Replica:
    """One dispatcher process: its own live view over the shared table, its events consumer."""

    def __init__(self, messaging: Messaging, before_commit: Callable[[], None] = lambda: None) -> None:
        self.messaging = messaging
        self.fleet = LiveFleet(BOUNDS, all_cars(messaging.dynamodb))
        self.sync = FleetSync(self.fleet, lambda: all_cars(messaging.dynamodb))
        table = handlers(
            roads=StraightRoads(), fleet=self.fleet, control=DispatchControl(), max_pickup_eta_s=900
        )
        self._consume = idempotent(lambda: RacedUnitOfWork(messaging, before_commit), table)

    def request(self, ride_id: str) -> None:
        data = _requested(ride_id)
        self._consume(catalog.record(data, subject=ride_id), data)

    def state(self, car_id: str) -> tuple[CarState, str | None, int]:
        car = next(c for c in self.fleet.all() if c.car_id == car_id)
        return car.state, car.ride_id, car.version


def _assigned_car(messaging: Messaging, ride_id: str) -> str | None:
    row = DynamoAssignments(messaging.unit_of_work()).get(ride_id)
    return row.car_id if row else None


def test_two_replicas_racing_for_the_nearest_car_reserve_it_once_and_the_loser_takes_the_next() -> None:
    with in_process_messaging(TOPOLOGY) as messaging:
        seed_cars(messaging.dynamodb, lambda: DynamoFleetUnitOfWork(messaging.unit_of_work()), FLEET)
        one = Replica(messaging)
        raced = {"done": False}

        def one_takes_car_1_first() -> None:  # after two staged car-1 for ride-2, before it commits
            if not raced["done"]:
                raced["done"] = True
                one.request("ride-1")

        two = Replica(messaging, before_commit=one_takes_car_1_first)
        two.request("ride-2")
        assert (_assigned_car(messaging, "ride-1"), _assigned_car(messaging, "ride-2")) == ("car-1", "car-2")
        stored = {car.car_id: (car.state, car.ride_id) for car in all_cars(messaging.dynamodb)}
        assert stored == {"car-1": (CarState.RESERVED, "ride-1"), "car-2": (CarState.RESERVED, "ride-2")}
        assert two.state("car-1") == (CarState.RESERVED, "ride-1", 1)  # the refused car, read as taken
        assert one.state("car-2") == (CarState.AVAILABLE, None, 0)  # not seen yet ...
        assert one.sync.step() == 2
        assert one.state("car-2") == (CarState.RESERVED, "ride-2", 1)  # ... until the table is read back


def test_a_replica_with_a_stale_view_reads_the_car_as_taken_and_assigns_the_next_one() -> None:
    with in_process_messaging(TOPOLOGY) as messaging:
        seed_cars(messaging.dynamodb, lambda: DynamoFleetUnitOfWork(messaging.unit_of_work()), FLEET)
        one, two = Replica(messaging), Replica(messaging)
        one.request("ride-1")
        assert two.state("car-1") == (CarState.AVAILABLE, None, 0)  # two has not heard of it
        two.request("ride-2")
        assert (_assigned_car(messaging, "ride-1"), _assigned_car(messaging, "ride-2")) == ("car-1", "car-2")
        assert two.state("car-1") == (CarState.RESERVED, "ride-1", 1)
        two.request("ride-3")  # no car left: neither replica hands one out twice
        assert _assigned_car(messaging, "ride-3") is None


def test_the_view_never_goes_back_to_an_older_version_of_a_car() -> None:
    fleet = LiveFleet(BOUNDS, [Car("car-1", CarState.AVAILABLE, 60.171, 24.94)])
    read_before = [Car("car-1", CarState.AVAILABLE, 60.171, 24.94, version=0)]  # a table read in flight ...
    fleet.refresh(Car("car-1", CarState.RESERVED, 60.171, 24.94, "ride-1", version=1))  # ... a commit lands
    FleetSync(fleet, lambda: read_before).step()  # ... then the read's result arrives
    assert [(c.state, c.version) for c in fleet.all()] == [(CarState.RESERVED, 1)]
    assert fleet.nearest_available(60.17, 24.94, 5) == []
    fleet.refresh(Car("car-1", CarState.AVAILABLE, 60.171, 24.94, version=2))  # a newer one is taken
    assert [(c.state, c.version) for c in fleet.all()] == [(CarState.AVAILABLE, 2)]


def _telemetry(car_id: str, lat: float, lon: float) -> StreamRecord:
    data = CarTelemetry(
        car_id=car_id,
        ride_id=None,
        phase=CarPhase.IDLE,
        lat=lat,
        lon=lon,
        speed_kmh=0.0,
        heading=0.0,
        battery=90.0,
        odometer_m=0.0,
        sim_time_s=1.0,
        at=AT,
    )
    return StreamRecord("1", car_id, catalog.record(data, subject=car_id), data)


def test_a_watched_shard_moves_the_view_and_stores_nothing() -> None:
    with in_process_messaging(TOPOLOGY) as messaging:
        seed_cars(messaging.dynamodb, lambda: DynamoFleetUnitOfWork(messaging.unit_of_work()), FLEET)
        replica = Replica(messaging)
        moved(replica.fleet, [_telemetry("car-2", 60.3, 24.95), _telemetry("car-9", 60.2, 24.9)])
        assert replica.fleet.position("car-2") == (60.3, 24.95)
        assert replica.fleet.nearest_available(60.3, 24.95, 1)[0].car_id == "car-2"
        assert [(c.lat, c.lon) for c in all_cars(messaging.dynamodb) if c.car_id == "car-2"] == [
            (60.175, 24.94)
        ]
        assert replica.fleet.position("car-9") is None  # not a car of the fleet
