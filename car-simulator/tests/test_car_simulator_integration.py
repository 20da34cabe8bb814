"""The car edge against a real emulator: fleet events in through bus and queue, posted to the car's
mailbox and applied by the replica holding its group lease, telemetry out to Kinesis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from car_simulator_fakes import StraightRoads

from acr import aws
from acr.catalog.base import TELEMETRY_STREAM, Place
from acr.catalog.car import CarTelemetry
from acr.catalog.fleet import CarAssigned
from acr.consumer import SqsConsumer, idempotent
from acr.fleet import FleetCar
from acr.leases import LeaseTable
from acr.loops import Loops
from acr.runtime import Messaging
from acr.settings import Settings
from acr.stream import decode_record
from acr.topology import discover
from acr.topology.apply import Clients, apply
from acr_testkit.emulator import aws_emulator
from car_simulator.adapters.dynamo import DynamoCarStore, DynamoCarUnitOfWork, DynamoMailbox
from car_simulator.adapters.kinesis import KinesisPublisher, TelemetryBuffer
from car_simulator.domain import GROUPS
from car_simulator.handlers import CarSimulator, CommandApplier, Fleet, FleetGroups, SimulationLoop, handlers
from car_simulator.simulation import Simulation
from car_simulator.topology import CARS, COMMANDS, TOPOLOGY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    with aws_emulator() as url:
        s = Settings(aws_endpoint_url=url, sqs_wait_s=1)
        apply(discover(), Clients(lambda name: aws.client(name, s)))
        yield s


def _read_stream(kinesis: Any) -> list[CarTelemetry]:
    out: list[tuple[str, CarTelemetry]] = []
    for shard in kinesis.list_shards(StreamName=TELEMETRY_STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=TELEMETRY_STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
        for record in records:
            decoded = decode_record(record)
            assert decoded is not None and decoded.partition_key == decoded.event.subject
            assert isinstance(decoded.data, CarTelemetry)
            out.append((record["SequenceNumber"], decoded.data))
    return [data for _, data in out]


def test_the_topology_declares_the_stream_and_the_fleet_subscription(settings: Settings) -> None:
    clients = Clients(lambda name: aws.client(name, settings))
    shards = clients.kinesis.list_shards(StreamName=TELEMETRY_STREAM)["Shards"]
    assert len(shards) == 2
    assert clients.sqs.get_queue_url(QueueName="acr-car-simulator-events")["QueueUrl"]
    tables = {TOPOLOGY.inbox_table, CARS, COMMANDS, TOPOLOGY.leases_table}
    assert tables <= set(clients.dynamodb.list_tables()["TableNames"])


def test_a_car_assigned_on_the_fleet_bus_drives_the_car_and_its_telemetry_lands_on_the_stream(
    settings: Settings,
) -> None:
    dispatcher = Messaging(next(s for s in discover() if s.service == "car-dispatcher"), settings, Loops())
    edge = Messaging(TOPOLOGY, settings, Loops())
    cars = [FleetCar(f"car-{i:05d}", 60.16 + i / 1000, 24.93) for i in range(1, 21)]
    fleet = {car.car_id: car for car in cars}
    simulator = CarSimulator(Simulation([], sim_speed=100, wall_start=time.time(), idle_every_s=5.0))
    leases = LeaseTable(edge.dynamodb, TOPOLOGY.leases_table, "replica-it", 30.0)
    store = DynamoCarStore(edge.dynamodb, leases)
    groups = FleetGroups(simulator, store, fleet, seed=7)
    for group in GROUPS:
        held = leases.acquire(group)
        assert held is not None
        groups.on_gained(held)

    def unit_of_work() -> DynamoCarUnitOfWork:
        return DynamoCarUnitOfWork(edge.unit_of_work(), leases)

    applier = CommandApplier(
        simulator, DynamoMailbox(edge.dynamodb), unit_of_work, groups.held, StraightRoads(10.0), 5
    )
    publisher = KinesisPublisher(edge.kinesis(), TELEMETRY_STREAM, TelemetryBuffer())

    pickup, dropoff = Place(label="P", lat=60.165, lon=24.935), Place(label="D", lat=60.166, lon=24.935)
    assigned = CarAssigned(
        ride_id="ride-it-1",
        car_id="car-00003",
        car_lat=60.163,
        car_lon=24.93,
        pickup=pickup,
        dropoff=dropoff,
        pickup_eta_seconds=50,
        assigned_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    uow = dispatcher.unit_of_work()
    uow.record(assigned, subject="ride-it-1", sequence=1)
    uow.commit()
    assert dispatcher.relay is not None and dispatcher.relay.drain_once() == 1

    consumer = SqsConsumer(
        name="t",
        sqs=edge.sqs,
        queue_url=edge.queue_url("acr-car-simulator-events"),
        dead_letter_queue_url=edge.queue_url("acr-car-simulator-events-dlq"),
        handler=idempotent(unit_of_work, handlers(fleet=Fleet(fleet))),
        wait_s=1,
    )
    deadline = time.monotonic() + 15
    while simulator.simulation.car("car-00003").ride_id is None and time.monotonic() < deadline:
        consumer.poll_once()
        applier.step()
    assert simulator.simulation.car("car-00003").phase.value == "TO_PICKUP"
    [stored] = store.load_all()  # the assignment was stored when applied
    assert (stored.car.car_id, stored.car.ride_id, stored.car.version) == ("car-00003", "ride-it-1", 1)

    loops = Loops()
    loops.add("simulation", SimulationLoop(simulator, publisher.buffer).run)
    loops.add("telemetry-publisher", publisher.run)
    loops.on_stop(publisher.wake)
    loops.start()
    started, deadline = time.monotonic(), time.monotonic() + 20
    while simulator.simulation.car("car-00003").ride_id is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(max(1.0, started + 5.5 - time.monotonic()))  # one idle heartbeat round, and the last records
    loops.stop()

    telemetry = _read_stream(edge.kinesis())
    assert publisher.records_sent == len(telemetry) > 20
    assert {t.car_id for t in telemetry} == {c.car_id for c in cars}  # idle heartbeats of the whole fleet
    phases = [t.phase for t in telemetry if t.car_id == "car-00003"]
    changes = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
    assert changes[-4:] == ["TO_PICKUP", "BOARDING", "TO_DESTINATION", "IDLE"]
    final = [t for t in telemetry if t.car_id == "car-00003"][-1]
    assert (final.lat, final.lon, final.ride_id) == (dropoff.lat, dropoff.lon, None)
    sim_times = [t.sim_time_s for t in telemetry if t.car_id == "car-00003"]
    assert sim_times == sorted(sim_times)  # in order per car (one shard per car)
