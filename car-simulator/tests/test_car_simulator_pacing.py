"""How often cars report, in WALL time, whatever the speed factor (a fake clock drives the ticks)."""

from __future__ import annotations

from collections import Counter

from acr.catalog.car import CarPhase
from car_simulator.domain import Assignment, Car, Leg, Point
from car_simulator.simulation import Report, Simulation

A = Point(60.10, 24.90)
FAR = Point(61.00, 24.90)  # ~100 km north
NEAR = Point(60.11, 24.90)


def _fleet(n: int) -> list[Car]:
    return [Car(f"car-{i:05d}", A.lat, A.lon) for i in range(1, n + 1)]


def _ticks(sim: Simulation, start: float, seconds: float, tick_s: float = 0.25) -> list[Report]:
    out: list[Report] = []
    for k in range(1, round(seconds / tick_s) + 1):
        out += sim.tick(start + k * tick_s)
    return out


def test_a_moving_car_at_sim_speed_1000_reports_at_most_twice_per_wall_second() -> None:
    sim = Simulation(_fleet(1), sim_speed=1000, wall_start=0.0)
    # a 100 km drive of 20 000 simulated seconds = 20 wall seconds at 1000x
    sim.assign(
        "car-00001",
        Assignment(
            "r1",
            FAR,
            A,
            Leg([(A.lat, A.lon), (FAR.lat, FAR.lon)], 20_000),
            Leg([(FAR.lat, FAR.lon), (A.lat, A.lon)], 20_000),
            60,
        ),
    )
    reports = _ticks(sim, 0.0, 10.0)
    moving = [r for r in reports if r.telemetry.phase is CarPhase.TO_PICKUP]
    assert sim.car("car-00001").moving and sim.sim_time_s == 10_000
    per_second = Counter(int(r.wall_time - 1e-9) for r in moving)
    assert max(per_second.values()) <= 2 and len(moving) <= 2 * 10 + 1
    assert len(moving) >= 18  # and it does keep reporting while it moves
    assert sum(r.essential for r in reports) == 1  # the assignment (IDLE -> TO_PICKUP)
    lats = [r.telemetry.lat for r in moving]
    assert lats == sorted(lats) and len(set(lats)) == len(lats)  # each report shows progress


def test_idle_cars_send_a_heartbeat_every_thirty_wall_seconds_in_ten_second_slots() -> None:
    sim = Simulation(_fleet(200), sim_speed=30, wall_start=0.0)
    reports = _ticks(sim, 0.0, 120.0)
    per_car = Counter(r.telemetry.car_id for r in reports)
    assert set(per_car.values()) == {4}  # 120 s / 30 s
    per_tick = Counter(r.wall_time for r in reports)
    assert set(per_tick) == {float(t) for t in range(10, 121, 10)}  # one batch every 10 s, none between
    assert max(per_tick.values()) <= 200 / 3 + 1  # the fleet spread over the 3 slots: never a burst
    assert all(r.telemetry.phase is CarPhase.IDLE and not r.essential for r in reports)


def test_every_phase_change_is_reported_even_several_within_one_tick() -> None:
    sim = Simulation(_fleet(1), sim_speed=1000, wall_start=0.0)
    sim.assign(
        "car-00001",
        Assignment(
            "r1",
            NEAR,
            A,
            Leg([(A.lat, A.lon), (NEAR.lat, NEAR.lon)], 100),
            Leg([(NEAR.lat, NEAR.lon), (A.lat, A.lon)], 100),
            30,
        ),
    )
    reports = sim.tick(0.25)  # 250 simulated seconds: the whole ride
    essential = [(r.telemetry.phase, r.telemetry.sim_time_s) for r in reports if r.essential]
    assert essential == [
        (CarPhase.TO_PICKUP, 0.0),
        (CarPhase.TO_PICKUP, 100.0),
        (CarPhase.BOARDING, 100.0),
        (CarPhase.TO_DESTINATION, 130.0),
        (CarPhase.TO_DESTINATION, 230.0),
        (CarPhase.IDLE, 230.0),
    ]
    assert [r.telemetry.phase for r in reports][-1] is CarPhase.IDLE  # nothing periodic after the last change


def test_commands_are_reported_at_the_next_tick_and_a_stalled_car_keeps_its_heartbeat() -> None:
    sim = Simulation(_fleet(2), sim_speed=10, wall_start=0.0)
    sim.assign(
        "car-00002",
        Assignment(
            "r1",
            FAR,
            A,
            Leg([(A.lat, A.lon), (FAR.lat, FAR.lon)], 20_000),
            Leg([(FAR.lat, FAR.lon), (A.lat, A.lon)], 20_000),
            60,
        ),
    )
    _ticks(sim, 0.0, 2.0)
    assert sim.stall("car-00002") and not sim.stall("car-00002")
    reports = [r for r in _ticks(sim, 2.0, 5.0) if r.telemetry.car_id == "car-00002"]
    assert reports[0].essential and all(r.telemetry.phase is CarPhase.STALLED for r in reports)
    assert len({(r.telemetry.lat, r.telemetry.lon) for r in reports}) == 1  # frozen
    assert all(r.telemetry.ride_id == "r1" and r.telemetry.speed_kmh == 0 for r in reports)
    assert 9 <= len(reports) <= 11  # a car with a ride reports every 0.5 s, stalled or not


def test_a_late_tick_slows_simulated_time_instead_of_teleporting_cars() -> None:
    sim = Simulation(_fleet(1), sim_speed=30, wall_start=0.0)
    sim.tick(60.0)
    assert sim.sim_time_s == 30.0  # capped at one wall second of progress
