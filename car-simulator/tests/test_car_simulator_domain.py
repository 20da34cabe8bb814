"""The car state machine and the movement along a polyline (pure: no AWS, no clock)."""

from __future__ import annotations

import pytest

from acr.catalog.car import CarPhase
from acr.geo import haversine_m
from car_simulator.domain import Assignment, Car, Leg, Point, Telemetry, bearing_deg

HOME = Point(60.1600, 24.9300)
PICKUP = Point(60.1650, 24.9400)
DROPOFF = Point(60.1700, 24.9300)
CORNER = (60.1650, 24.9300)


def _leg(a: Point, b: Point, seconds: float, via: tuple[float, float] | None = None) -> Leg:
    path = [(a.lat, a.lon), *([via] if via else []), (b.lat, b.lon)]
    return Leg(path, seconds)


def _assignment(ride: str = "ride-1", boarding_s: float = 60, sequence: int | None = None) -> Assignment:
    return Assignment(
        ride,
        PICKUP,
        DROPOFF,
        _leg(HOME, PICKUP, 300, via=CORNER),
        _leg(PICKUP, DROPOFF, 200),
        boarding_s,
        sequence,
    )


def _run(car: Car, seconds: float, step: float = 1.0, start: float = 0.0) -> list[Telemetry]:
    out: list[Telemetry] = []
    t = start
    while t < start + seconds - 1e-9:
        dt = min(step, start + seconds - t)
        out += car.advance(dt, t)
        t += dt
    return out


def test_a_leg_interpolates_along_its_polyline_with_the_segment_heading() -> None:
    leg = _leg(HOME, PICKUP, 100, via=CORNER)
    first = haversine_m(HOME.lat, HOME.lon, *CORNER)
    assert leg.length_m == pytest.approx(first + haversine_m(*CORNER, PICKUP.lat, PICKUP.lon))
    point, heading = leg.at(first / 2)
    assert point.lat == pytest.approx((HOME.lat + CORNER[0]) / 2) and point.lon == pytest.approx(HOME.lon)
    assert heading == pytest.approx(0.0, abs=1e-6)  # due north
    point, heading = leg.at(first + 1)
    assert heading == pytest.approx(bearing_deg(Point(*CORNER), PICKUP)) and 85 < heading < 95  # east
    assert leg.at(leg.length_m * 2)[0] == PICKUP
    assert leg.time_left_s(0) == pytest.approx(100) and leg.time_left_s(leg.length_m) == 0


def test_the_car_reaches_the_pickup_after_the_route_duration_with_phases_in_order() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    assignment = _assignment()
    assert car.assign(assignment) and car.phase is CarPhase.TO_PICKUP and car.target == PICKUP
    assert _run(car, 299.0) == [] and car.phase is CarPhase.TO_PICKUP and car.speed_kmh > 0
    changes = _run(car, 2.0, start=299.0)
    assert [c.phase for c in changes] == [CarPhase.TO_PICKUP, CarPhase.BOARDING]
    arrived, boarding = changes
    assert arrived.sim_time_s == pytest.approx(300.0) and (arrived.lat, arrived.lon) == (
        PICKUP.lat,
        PICKUP.lon,
    )
    assert arrived.speed_kmh == 0 and arrived.target == PICKUP and boarding.target is None
    assert boarding.ride_id == "ride-1" and (boarding.lat, boarding.lon) == (PICKUP.lat, PICKUP.lon)
    assert car.odometer_m == pytest.approx(assignment.to_pickup.length_m)


def test_boarding_waits_then_the_car_drives_to_the_drop_off_and_idles_there() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon, battery=80.0)
    assignment = _assignment(boarding_s=60)
    car.assign(assignment)
    _run(car, 300.0)
    assert car.phase is CarPhase.BOARDING
    assert _run(car, 59.0, start=300.0) == [] and car.phase is CarPhase.BOARDING and car.speed_kmh == 0
    started = _run(car, 1.0, start=359.0)
    assert [(c.phase, c.sim_time_s, c.target) for c in started] == [(CarPhase.TO_DESTINATION, 360.0, DROPOFF)]
    done = _run(car, 200.0, start=360.0)
    assert [c.phase for c in done] == [CarPhase.TO_DESTINATION, CarPhase.IDLE]
    final, idle = done
    assert final.ride_id == "ride-1" and final.sim_time_s == pytest.approx(560.0)
    assert (idle.lat, idle.lon, idle.ride_id, idle.target) == (DROPOFF.lat, DROPOFF.lon, None, None)
    total = assignment.to_pickup.length_m + assignment.to_dropoff.length_m
    assert car.odometer_m == pytest.approx(total) and idle.odometer_m == pytest.approx(total, abs=0.01)
    assert car.battery < 80.0
    assert _run(car, 100.0, start=560.0) == [] and (car.lat, car.lon) == (DROPOFF.lat, DROPOFF.lon)


def test_one_big_step_reports_every_phase_change_at_its_exact_time() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    car.assign(_assignment(boarding_s=60))
    changes = car.advance(10_000, 0.0)
    assert [(c.phase, c.sim_time_s) for c in changes] == [
        (CarPhase.TO_PICKUP, 300.0),
        (CarPhase.BOARDING, 300.0),
        (CarPhase.TO_DESTINATION, 360.0),
        (CarPhase.TO_DESTINATION, 560.0),
        (CarPhase.IDLE, 560.0),
    ]


def test_release_stops_the_car_where_it_is() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    car.assign(_assignment())
    _run(car, 100.0)
    where = car.position
    assert not car.release("another-ride") and car.phase is CarPhase.TO_PICKUP
    assert car.release("ride-1")
    assert (car.phase, car.ride_id, car.target, car.speed_kmh) == (CarPhase.IDLE, None, None, 0.0)
    assert _run(car, 500.0, start=100.0) == [] and car.position == where


def test_a_late_or_repeated_assignment_does_not_restart_a_drive() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    assert car.assign(_assignment())
    _run(car, 100.0)
    where, odometer = car.position, car.odometer_m
    assert not car.assign(_assignment())  # the same ride again: keep driving from here
    assert car.position == where and car.odometer_m == odometer
    car.release("ride-1")
    assert not car.assign(_assignment())  # the assignment of a released ride arriving late
    assert car.phase is CarPhase.IDLE


def test_an_assignment_of_the_ride_the_car_serves_applies_only_if_its_sequence_is_newer() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    assert car.assign(_assignment(sequence=2))
    _run(car, 100.0)
    where, odometer = car.position, car.odometer_m
    assert not car.assign(_assignment(sequence=2))  # a repeat of the applied dispatch
    assert not car.assign(_assignment(sequence=1))  # an older dispatch of the ride, arriving late
    assert car.position == where and car.odometer_m == odometer and car.assignment
    assert car.assignment.sequence == 2
    # the car never heard dispatch 3 (another car's): 4 applies at once, a gap is no reason to wait
    assert car.assign(_assignment(sequence=4))
    assert car.assignment.sequence == 4 and car.phase is CarPhase.TO_PICKUP


def test_a_stall_freezes_the_car_and_reports_stalled_with_its_ride_until_unstalled() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    car.assign(_assignment())
    _run(car, 100.0)
    where, odometer = car.position, car.odometer_m
    assert car.stall() and not car.stall()
    report = car.telemetry(100.0)
    assert (report.phase, report.ride_id, report.target, report.speed_kmh) == (
        CarPhase.STALLED,
        "ride-1",
        PICKUP,
        0,
    )
    assert _run(car, 1000.0, start=100.0) == [] and car.position == where and car.odometer_m == odometer
    assert car.unstall() and car.phase is CarPhase.TO_PICKUP
    changes = _run(car, 200.0, start=1100.0)
    assert [c.phase for c in changes] == [CarPhase.TO_PICKUP, CarPhase.BOARDING]
    assert changes[0].sim_time_s == pytest.approx(1300.0)  # the 200 s left of the 300 s leg


def test_a_stalled_boarding_car_keeps_boarding_after_the_stall() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    car.assign(_assignment(boarding_s=60))
    _run(car, 330.0)
    car.stall()
    _run(car, 500.0, start=330.0)
    car.unstall()
    assert car.phase is CarPhase.BOARDING
    assert [c.sim_time_s for c in _run(car, 30.0, start=830.0)] == [860.0]


def test_out_of_service_keeps_the_car_where_it_is_without_a_ride() -> None:
    stalled = Car("car-00001", HOME.lat, HOME.lon)
    stalled.assign(_assignment())
    _run(stalled, 100.0)
    stalled.stall()
    where = stalled.position
    assert stalled.take_out_of_service()
    assert (stalled.phase, stalled.ride_id, stalled.target, stalled.position) == (
        CarPhase.STALLED,
        None,
        None,
        where,
    )
    assert _run(stalled, 500.0) == [] and stalled.position == where

    driving = Car("car-00002", HOME.lat, HOME.lon)
    driving.assign(_assignment())
    _run(driving, 100.0)
    where = driving.position
    assert driving.take_out_of_service() and driving.phase is CarPhase.IDLE and driving.ride_id is None
    assert _run(driving, 500.0) == [] and driving.position == where


def test_a_replacement_car_picks_the_rider_up_where_the_stalled_car_stopped() -> None:
    stalled_at = Point(60.1680, 24.9350)
    car = Car("car-00002", HOME.lat, HOME.lon)
    car.assign(
        Assignment(
            "ride-1", stalled_at, DROPOFF, _leg(HOME, stalled_at, 120), _leg(stalled_at, DROPOFF, 90), 30
        )
    )
    changes = car.advance(1_000, 0.0)
    assert [c.phase for c in changes] == [
        CarPhase.TO_PICKUP,
        CarPhase.BOARDING,
        CarPhase.TO_DESTINATION,
        CarPhase.TO_DESTINATION,
        CarPhase.IDLE,
    ]
    assert (changes[1].lat, changes[1].lon) == (stalled_at.lat, stalled_at.lon)
    assert (car.lat, car.lon) == (DROPOFF.lat, DROPOFF.lon)


def test_a_car_already_at_the_pickup_arrives_at_once() -> None:
    car = Car("car-00001", PICKUP.lat, PICKUP.lon)
    car.assign(
        Assignment(
            "ride-1", PICKUP, DROPOFF, Leg([(PICKUP.lat, PICKUP.lon)], 0), _leg(PICKUP, DROPOFF, 90), 10
        )
    )
    assert [c.phase for c in car.advance(0.25, 0.0)] == [CarPhase.TO_PICKUP, CarPhase.BOARDING]


def test_a_command_tried_on_a_copy_leaves_the_car_as_it_was() -> None:
    car = Car("car-00001", HOME.lat, HOME.lon)
    car.assign(_assignment())
    _run(car, 100.0)
    before = (car.state_key(), car.position, car.travelled_m)
    trial = car.copy()
    assert trial.release("ride-1") and trial.state_key() != car.state_key()
    assert (car.state_key(), car.position, car.travelled_m) == before and list(car.closed_rides) == []
