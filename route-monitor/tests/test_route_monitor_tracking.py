"""The pure tracking logic, fed with synthetic telemetry (no AWS)."""

from __future__ import annotations

from route_monitor_fakes import SIM_SPEED, WALL0, Car, StraightRoads, names, north, seconds, wall, whole_ride

from acr.catalog.monitoring import CarStalled, RideEtaUpdated, TripCompleted
from route_monitor.adapters.rows import car_from_item, car_item, ride_from_item, ride_item
from route_monitor.api import tracking_view
from route_monitor.domain import QuietCars, Rules, Tracker

RULES = Rules(stall_window_s=120, eta_push_s=2)


def feed(tracker: Tracker, records: list) -> list:  # type: ignore[type-arg]
    for record in records:
        tracker.observe(record)
    facts, tracker.facts = tracker.facts, []
    return facts


def test_arrival_start_and_completion_in_order_with_measured_distance_and_duration() -> None:
    tracker = Tracker(RULES)
    facts = feed(tracker, whole_ride(Car("car-1"), "ride-1"))
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]
    done = facts[-1]
    assert isinstance(done, TripCompleted)
    assert (done.ride_id, done.car_id) == ("ride-1", "car-1")
    assert abs(done.distance_meters - 500.0) < 0.5  # the pickup leg is not part of the trip
    assert done.duration_seconds == 75.0  # simulated seconds from TripStarted to the drop-off
    ride = tracker.rides["ride-1"]
    assert ride.completed and ride.phase == "COMPLETED" and ride.trip_started_sim == 120.0
    assert tracker.cars["car-1"].ride_id is None


def test_completion_when_the_car_goes_straight_to_its_next_ride() -> None:
    car = Car("car-1")
    records = whole_ride(car, "ride-1")[:-1]  # no IDLE record: the next ride starts at once
    records.append(car.record(records[-1].sim_time_s, "TO_PICKUP", "ride-2", car.at_m + 300))
    facts = feed(Tracker(RULES), records)
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]
    assert facts[-1].ride_id == "ride-1"


def test_duplicates_and_out_of_order_records_are_ignored() -> None:
    records = whole_ride(Car("car-1"), "ride-1")
    shuffled = []
    for n, record in enumerate(records):
        shuffled.append(record)
        shuffled.append(record)  # the producer retried it
        if n >= 2:
            shuffled.append(records[n - 2])  # a late copy of an older record
    tracker = Tracker(RULES)
    facts = feed(tracker, shuffled)
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]
    assert abs(facts[-1].distance_meters - 500.0) < 0.5
    assert tracker.ignored == len(shuffled) - len(records)
    assert feed(tracker, records) == []  # the whole ride again: every fact was already emitted


def test_idle_cars_are_not_tracked() -> None:
    car = Car("car-9")
    tracker = Tracker(RULES)
    assert feed(tracker, [car.record(s, "IDLE", None) for s in (0, 150, 300)]) == []
    assert tracker.cars == {} and tracker.changes().cars == []


def test_a_stall_is_detected_after_the_window_in_simulated_seconds_once() -> None:
    car = Car("car-1")
    tracker = Tracker(RULES)
    feed(
        tracker,
        [car.record(0, "TO_PICKUP", "ride-1", 2000), car.record(15, "TO_PICKUP", "ride-1", 2000, 100)],
    )
    # no progress from sim 15 on: tiny jitter (< 5 m) is no progress
    assert (
        feed(
            tracker,
            [
                car.record(60, "TO_PICKUP", "ride-1", 2000, 2),
                car.record(134.9, "TO_PICKUP", "ride-1", 2000, 1),
            ],
        )
        == []
    )
    facts = feed(tracker, [car.record(135, "STALLED", "ride-1", 2000)])
    assert names(facts) == ["CarStalled"]
    stalled = facts[0]
    assert isinstance(stalled, CarStalled)
    assert (stalled.ride_id, stalled.car_id, round(stalled.lat, 6)) == (
        "ride-1",
        "car-1",
        round(north(103), 6),
    )
    assert (
        feed(tracker, [car.record(s, "STALLED", "ride-1", 2000) for s in (285, 435)]) == []
    )  # once per ride+car


def test_boarding_is_not_a_stall() -> None:
    car = Car("car-1")
    tracker = Tracker(Rules(stall_window_s=30))
    facts = feed(
        tracker,
        [
            car.record(0, "TO_PICKUP", "ride-1", 100),
            car.record(15, "BOARDING", "ride-1", 100, 100),
            car.record(75, "BOARDING", "ride-1", 100),
            car.record(80, "TO_DESTINATION", "ride-1", 900),
            car.record(95, "TO_DESTINATION", "ride-1", 900, 100),
        ],
    )
    assert "CarStalled" not in names(facts)


def test_a_trip_over_two_cars_after_a_stall_is_measured_over_both_legs() -> None:
    first, second = Car("car-1"), Car("car-2", at_m=-1500)
    tracker = Tracker(RULES)
    ride = "ride-1"
    facts = feed(
        tracker,
        [
            first.record(0, "TO_PICKUP", ride, 100),
            first.record(15, "BOARDING", ride, 100, 100),
            first.record(75, "TO_DESTINATION", ride, 1000),
            first.record(90, "TO_DESTINATION", ride, 1000, 150),
            first.record(105, "TO_DESTINATION", ride, 1000, 150),  # 300 m of trip, then it stops
            first.record(150, "STALLED", ride, 1000),
            first.record(225, "STALLED", ride, 1000),
        ],
    )
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "CarStalled"]
    stall_at = first.at_m
    # the replacement drives 1900 m to where the first car stalled (not part of the trip) ...
    facts = feed(
        tracker,
        [
            second.record(240, "TO_PICKUP", ride, stall_at),
            second.record(255, "TO_PICKUP", ride, stall_at, 1000),
            first.record(300, "STALLED", ride, 1000),  # the stalled car's heartbeat: no takeover
            second.record(270, "BOARDING", ride, stall_at, stall_at - second.at_m),
        ],
    )
    assert names(facts) == ["CarArrivedAtPickup"] and facts[0].car_id == "car-2"
    assert tracker.rides[ride].car_id == "car-2"
    # ... the first car is taken out of the ride (no completion for it), the second one finishes the trip
    facts = feed(
        tracker,
        [
            first.record(310, "STALLED", None),
            second.record(330, "TO_DESTINATION", ride, 1000),
            second.record(345, "TO_DESTINATION", ride, 1000, 300),
            second.record(360, "TO_DESTINATION", ride, 1000, 300),  # at the drop-off
            second.record(360, "IDLE", None),
        ],
    )
    assert names(facts) == ["TripStarted", "TripCompleted"]
    done = facts[-1]
    assert done.car_id == "car-2"
    assert abs(done.distance_meters - (300 + 600)) < 0.5
    assert done.duration_seconds == 360 - 75  # from the first TripStarted
    legs = tracker.rides[ride].legs
    assert round(legs["car-1"].distance_m) == 300 and round(legs["car-2"].distance_m) == 600


def test_eta_is_throttled_on_the_wall_clock_and_uses_the_average_speed() -> None:
    car = Car("car-1")
    tracker = Tracker(RULES)
    roads = StraightRoads()
    tracker.observe(car.record(0, "TO_PICKUP", "ride-1", 3000))
    tracker.flush_etas(wall(0), roads.remaining)
    first = tracker.facts[-1]
    assert isinstance(first, RideEtaUpdated) and first.phase == "TO_PICKUP"
    assert first.eta_seconds == 300.0  # no history: the route's own duration (3000 m at 10 m/s)
    for sim in (15, 30):
        tracker.observe(car.record(sim, "TO_PICKUP", "ride-1", 3000, 150))  # 10 m/s
    tracker.flush_etas(wall(0) + seconds(1.9), roads.remaining)
    assert len(tracker.facts) == 1  # within eta_push_s of the last push
    tracker.observe(car.record(45, "TO_PICKUP", "ride-1", 3000, 300))  # now 15 m/s on average over 45 s
    tracker.flush_etas(wall(0) + seconds(2.0), roads.remaining)
    second = tracker.facts[-1]
    assert len(tracker.facts) == 2 and second.eta_seconds == round(2400 / (600 / 45), 1)
    assert tracker.rides["ride-1"].eta_seconds == second.eta_seconds


def test_the_speed_window_keeps_the_last_minute_of_the_leg() -> None:
    car = Car("car-1")
    tracker = Tracker(RULES)
    for sim in range(0, 181, 15):
        tracker.observe(car.record(sim, "TO_PICKUP", "ride-1", 9000, 30 if sim < 120 else 300))
    cursor = tracker.cars["car-1"]
    assert [s for s, _ in cursor.samples] == [120, 135, 150, 165, 180]
    assert cursor.average_speed(RULES) == 20.0


def test_no_eta_from_a_backlog_nor_while_boarding() -> None:
    car = Car("car-1")
    tracker = Tracker(RULES)
    tracker.observe(car.record(0, "TO_PICKUP", "ride-1", 300))
    tracker.flush_etas(WALL0 + seconds(3600), StraightRoads().remaining)  # the record is an hour old
    tracker.observe(car.record(15, "BOARDING", "ride-1", 300, 300))
    tracker.flush_etas(wall(15), StraightRoads().remaining)
    assert names(tracker.facts) == ["CarArrivedAtPickup"]


def test_rows_round_trip_through_their_stored_form() -> None:
    tracker = Tracker(RULES)
    feed(tracker, whole_ride(Car("car-1"), "ride-1"))
    ride, cursor = tracker.rides["ride-1"], tracker.cars["car-1"]
    assert ride_from_item(ride_item(ride)) == ride
    assert car_from_item(car_item(cursor)) == cursor
    view = tracking_view(ride)
    assert view["completed"] is True and view["legs"][0]["carId"] == "car-1"


# ------------------------------------------------------------------ lost cars: never a completed trip
STOP_M, DROPOFF_M = 600.0, 900.0  # where ``mid_trip`` leaves the car, and its drop-off


def mid_trip(car: Car, ride_id: str) -> list:  # type: ignore[type-arg]
    """``whole_ride`` of a car at 0 m (pickup at 400 m, drop-off at 900 m) cut after its third
    TO_DESTINATION record: at 600 m, 200 m of its 500 m trip driven."""
    records = whole_ride(car, ride_id)
    cut = [n for n, r in enumerate(records) if str(r.phase) == "TO_DESTINATION"][2]
    assert records[cut].lat == north(STOP_M)
    return records[: cut + 1]


def test_a_car_that_reports_idle_away_from_the_drop_off_stalled_and_the_replacement_completes() -> None:
    tracker = Tracker(RULES)
    trip = mid_trip(Car("car-1"), "ride-1")
    last = trip[-1]
    assert names(feed(tracker, trip)) == ["CarArrivedAtPickup", "TripStarted"]
    restarted = Car("car-1", at_m=-5_000)  # a simulator that lost the car: IDLE at its start, odometer anew
    restarted.odometer = 0.0
    facts = feed(tracker, [restarted.record(last.sim_time_s + 30, "IDLE", None)])
    assert names(facts) == ["CarStalled"]  # not TripCompleted: the rider is not at the drop-off
    assert (facts[0].ride_id, facts[0].car_id, facts[0].lat) == (
        "ride-1",
        "car-1",
        north(STOP_M),
    )  # last seen
    ride = tracker.rides["ride-1"]
    assert not ride.completed and ride.legs["car-1"].stalled and tracker.cars["car-1"].ride_id is None
    assert feed(tracker, [restarted.record(last.sim_time_s + 60, "IDLE", None)]) == []  # once

    other = Car("car-2", at_m=STOP_M - 300)  # the replacement picks the rider up where the car was lost
    facts = feed(
        tracker,
        [
            other.record(300, "TO_PICKUP", "ride-1", STOP_M),
            other.record(315, "BOARDING", "ride-1", STOP_M, 300),
            other.record(375, "TO_DESTINATION", "ride-1", DROPOFF_M),
            other.record(390, "TO_DESTINATION", "ride-1", DROPOFF_M, DROPOFF_M - STOP_M),
            other.record(390, "IDLE", None),
        ],
    )
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]
    assert facts[-1].car_id == "car-2" and abs(facts[-1].distance_meters - 500.0) < 0.5


def test_a_car_that_reports_idle_at_the_drop_off_completed_its_trip_even_without_its_last_record() -> None:
    records = whole_ride(Car("car-1"), "ride-1")
    lost_final = records[:-2] + records[-1:]  # the TO_DESTINATION record at the drop-off never came
    facts = feed(Tracker(RULES), lost_final)
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]
    assert abs(facts[-1].distance_meters - 500.0) < 0.5


def test_a_car_sent_to_another_ride_mid_trip_stalled_the_first_one() -> None:
    car = Car("car-1")
    trip = mid_trip(car, "ride-1")
    car.at_m, car.odometer = STOP_M, trip[-1].odometer_m  # where the cut left it
    facts = feed(
        Tracker(RULES), [*trip, car.record(trip[-1].sim_time_s + 15, "TO_PICKUP", "ride-2", 5_000, 50)]
    )
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "CarStalled"]
    assert facts[-1].ride_id == "ride-1"


def test_a_restarted_car_that_drives_a_stretch_again_completes_its_trip_once_at_the_drop_off() -> None:
    trip = mid_trip(Car("car-1"), "ride-1")
    again = Car("car-1", at_m=STOP_M - 100)  # restored from its save of one record before: 100 m back
    again.odometer = trip[-2].odometer_m
    t = trip[-1].sim_time_s + 300  # after 10 wall seconds down
    resumed = [
        again.record(t, "TO_DESTINATION", "ride-1", DROPOFF_M),
        again.record(t + 15, "TO_DESTINATION", "ride-1", DROPOFF_M, 200),
        again.record(t + 30, "TO_DESTINATION", "ride-1", DROPOFF_M, 200),
        again.record(t + 30, "IDLE", None),
    ]
    facts = feed(Tracker(RULES), trip + resumed)
    assert names(facts) == ["CarArrivedAtPickup", "TripStarted", "TripCompleted"]


def test_a_car_quiet_while_its_shard_goes_on_is_lost_after_two_stall_windows() -> None:
    quiet = QuietCars(window_s=120)
    lost, other = Car("car-1"), Car("car-2", lon=24.95)
    quiet.observe("s0", lost.record(0, "TO_DESTINATION", "ride-1", 2_000))
    quiet.observe("s0", other.record(0, "IDLE", None))
    quiet.observe("s1", Car("car-3").record(500, "TO_PICKUP", "ride-3", 2_000))  # another shard's clock
    assert quiet.lost("s0") == []
    quiet.observe("s0", other.record(119, "IDLE", None))
    assert quiet.lost("s0") == []
    quiet.observe("s0", other.record(150, "IDLE", None))
    assert quiet.lost("s0") == []  # quiet since 150 (the clock is a window past its last record)
    quiet.observe("s0", other.record(269, "IDLE", None))
    assert quiet.lost("s0") == []
    quiet.observe("s0", other.record(270, "IDLE", None))
    assert quiet.lost("s0") == ["car-1"] and quiet.lost("s1") == []
    quiet.forget("s0", "car-1")
    assert quiet.lost("s0") == []
    quiet.observe("s0", lost.record(100, "TO_DESTINATION", "ride-1", 2_000))  # an older record read again
    assert quiet.lost("s0") == []


def test_a_car_whose_group_changes_simulator_replicas_is_not_lost_within_a_handover() -> None:
    """Two stall windows of simulated time pass in a few wall seconds at a high sim speed; a dead replica's
    car groups take longer than that to move: the car is lost only once ``handover_s`` (wall) passed too."""
    quiet = QuietCars(window_s=120, handover_s=20)
    handed_over, other = Car("car-1"), Car("car-2", lon=24.95)
    quiet.observe("s0", handed_over.record(0, "TO_DESTINATION", "ride-1", 2_000))
    quiet.observe("s0", other.record(0, "IDLE", None))
    quiet.observe("s0", other.record(150, "IDLE", None))
    assert quiet.lost("s0") == []  # quiet from here on
    quiet.observe("s0", other.record(150 + SIM_SPEED * 19, "IDLE", None))  # two windows, but 19 wall s
    assert quiet.lost("s0") == []
    quiet.observe("s0", handed_over.record(150 + SIM_SPEED * 19, "TO_DESTINATION", "ride-1", 2_000))
    quiet.observe("s0", other.record(150 + SIM_SPEED * 40, "IDLE", None))
    assert quiet.lost("s0") == []  # driven again by the replica that took its group
    quiet.observe("s0", other.record(150 + SIM_SPEED * 62, "IDLE", None))  # quiet again, for long
    assert quiet.lost("s0") == ["car-1"]


def test_a_restarted_simulator_whose_cars_all_report_again_loses_none() -> None:
    quiet = QuietCars(window_s=120)
    cars = [Car(f"car-{n}", lon=24.94 + n / 1000) for n in range(4)]
    for car in cars:
        quiet.observe("s0", car.record(0, "TO_PICKUP", f"ride-{car.car_id}", 3_000))
    # down for 20 wall s (600 simulated s), then every car reports, in two batches
    quiet.observe("s0", cars[0].record(600, "TO_PICKUP", "ride-car-0", 3_000))
    assert quiet.lost("s0") == []  # the others are quiet, not lost
    for car in cars[1:]:
        quiet.observe("s0", car.record(600, "TO_PICKUP", f"ride-{car.car_id}", 3_000))
    quiet.observe("s0", cars[0].record(800, "TO_PICKUP", "ride-car-0", 3_000))
    assert quiet.lost("s0") == []


def test_a_lost_car_stalled_where_it_was_last_seen_or_completed_at_its_drop_off() -> None:
    tracker = Tracker(RULES)
    feed(tracker, mid_trip(Car("car-1"), "ride-1"))
    feed(tracker, whole_ride(Car("car-2", lon=24.95), "ride-2")[:-1])  # at the drop-off, then nothing more
    now = 1_000.0
    tracker.lost("car-1", now, wall(now))
    tracker.lost("car-2", now, wall(now))
    tracker.lost("car-2", now, wall(now))
    facts = tracker.facts
    assert names(facts) == ["CarStalled", "TripCompleted"]
    assert (facts[0].ride_id, facts[0].lat, facts[0].at) == ("ride-1", north(STOP_M), wall(now))
    assert facts[1].ride_id == "ride-2" and facts[1].duration_seconds == 75.0 and facts[1].at == wall(195)
    tracker.lost("car-1", now + 500, wall(now + 500))  # once per ride and car
    assert len(tracker.facts) == 2


def test_a_car_that_reported_within_the_window_is_not_lost() -> None:
    tracker = Tracker(RULES)
    feed(tracker, mid_trip(Car("car-1"), "ride-1"))
    last = tracker.cars["car-1"].sim_time
    assert last is not None
    tracker.lost("car-1", last + 119, wall(last + 119))
    assert tracker.facts == []


def test_a_stalled_car_that_still_reaches_its_drop_off_completes_the_trip() -> None:
    car = Car("car-1")
    tracker = Tracker(RULES)
    trip = mid_trip(car, "ride-1")
    car.at_m, car.odometer = STOP_M, trip[-1].odometer_m  # where the cut left it
    t = trip[-1].sim_time_s
    stuck = [
        car.record(t + 60, "TO_DESTINATION", "ride-1", DROPOFF_M),
        car.record(t + 125, "STALLED", "ride-1"),
    ]
    assert names(feed(tracker, trip + stuck)) == ["CarArrivedAtPickup", "TripStarted", "CarStalled"]
    going = [  # unstalled before any replacement came
        car.record(t + 200, "TO_DESTINATION", "ride-1", DROPOFF_M, 150),
        car.record(t + 215, "TO_DESTINATION", "ride-1", DROPOFF_M, DROPOFF_M - STOP_M - 150),
        car.record(t + 215, "IDLE", None),
    ]
    facts = feed(tracker, going)
    assert names(facts) == ["TripCompleted"] and abs(facts[0].distance_meters - 500.0) < 0.5
