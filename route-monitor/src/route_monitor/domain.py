"""Per-ride tracking from car telemetry (pure: no I/O, no clock of its own).

A ``Tracker`` is loaded with the cursors of the cars and the tracking rows of the rides a batch of
telemetry touches, is fed the records in stream order and collects the facts they imply:
``CarArrivedAtPickup``, ``TripStarted``, ``TripCompleted``, ``CarStalled`` (from simulated time) and,
throttled on the wall-clock moment the caller passes in, ``RideEtaUpdated``. The caller commits the facts
and the changed rows together (with the stream checkpoint), so replaying the same records from the same
state derives the same facts and a committed fact is never derived twice.

A trip completes only where the car reaches its drop-off. A car that leaves its trip anywhere else (it
reports IDLE, or another ride, or nothing at all while its shard goes on: ``QuietCars``) was lost, by a
restart or a fault: that is a stall (``CarStalled``, once per ride and car), never a completed trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from acr.catalog.car import CarPhase, CarTelemetry
from acr.catalog.monitoring import CarArrivedAtPickup, CarStalled, RideEtaUpdated, TripCompleted, TripStarted
from acr.geo import haversine_m

COMPLETED: Final = "COMPLETED"  # the phase of a ride row once its trip is over
RidePhase = CarPhase | Literal["COMPLETED"]
MOVING = (CarPhase.TO_PICKUP, CarPhase.TO_DESTINATION)  # phases with an ETA
WATCHED = (CarPhase.TO_PICKUP, CarPhase.TO_DESTINATION, CarPhase.STALLED)  # phases that must make progress

Fact = RideEtaUpdated | CarArrivedAtPickup | TripStarted | TripCompleted | CarStalled
"""What the monitoring context derives from telemetry (every fact names its ride)."""

# (from_lat, from_lon, to_lat, to_lon) -> (duration_s, distance_m) on the streets, or None.
Remaining = Callable[[float, float, float, float], "tuple[float, float] | None"]


@dataclass(frozen=True)
class Rules:
    stall_window_s: float = 120.0  # simulated seconds without progress before CarStalled
    eta_push_s: float = 2.0  # wall seconds between two RideEtaUpdated of one ride
    progress_m: float = 5.0  # moving less than this is no progress
    speed_window_s: float = 60.0  # simulated seconds of telemetry behind the average speed
    min_speed_ms: float = 0.5  # below this the average says nothing: use the route's own duration
    eta_max_age_s: float = 30.0  # never push an ETA computed from a record older than this (wall)
    arrival_radius_m: float = 50.0  # a stalled car that reaches its target still completes the trip
    handover_s: float = 0.0  # wall: a silent car is lost only after this too (its group changing replicas)


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


@dataclass(frozen=True)
class Progress:
    """Where a car last made progress, and when (simulated)."""

    lat: float
    lon: float
    sim_time: float


@dataclass
class CarCursor:
    """What the monitor last saw of one car (the car's ride, phase, odometer, speed samples)."""

    car_id: str
    ride_id: str | None = None
    phase: CarPhase = CarPhase.IDLE
    sim_time: float | None = None
    odometer_m: float = 0.0
    lat: float = 0.0
    lon: float = 0.0
    target: Point | None = None
    seen: list[str] = field(default_factory=list)  # (phase, ride) keys already seen at ``sim_time``
    samples: list[tuple[float, float]] = field(default_factory=list)  # (sim_time, odometer_m) of this leg
    shard: str | None = None  # the stream shard the car's records are on
    version: int = 0

    def average_speed(self, rules: Rules) -> float | None:
        """Metres per simulated second over the sliding window, or None without usable history."""
        if len(self.samples) < 2:
            return None
        (t0, odo0), (t1, odo1) = self.samples[0], self.samples[-1]
        if t1 - t0 < 1.0:
            return None
        speed = (odo1 - odo0) / (t1 - t0)
        return speed if speed >= rules.min_speed_ms else None


@dataclass
class CarLeg:
    """One car's part in a ride: the facts already emitted for it and its progress."""

    arrived: bool = False
    started: bool = False
    stalled: bool = False
    distance_m: float = 0.0  # driven by this car in TO_DESTINATION
    progress: Progress | None = None


@dataclass
class RideTracking:
    """The tracking state of one ride, over every car that carried it."""

    ride_id: str
    car_id: str | None = None
    phase: RidePhase = CarPhase.IDLE
    lat: float | None = None
    lon: float | None = None
    sim_time: float | None = None
    at: datetime | None = None
    target: Point | None = None
    distance_m: float = 0.0  # TO_DESTINATION, over every car
    trip_started_sim: float | None = None
    trip_started_at: datetime | None = None
    completed: bool = False
    completed_at: datetime | None = None
    duration_s: float | None = None
    eta_seconds: float | None = None
    eta_pushed_at: datetime | None = None  # the wall-clock moment of the last RideEtaUpdated
    legs: dict[str, CarLeg] = field(default_factory=dict)
    version: int = 0

    @property
    def last_progress(self) -> Progress | None:
        leg = self.legs.get(self.car_id) if self.car_id else None
        return leg.progress if leg else None


@dataclass
class Changes:
    """What one commit writes: the changed rows and the facts."""

    cars: list[CarCursor]
    rides: list[RideTracking]
    facts: list[Fact]

    @property
    def empty(self) -> bool:
        return not (self.cars or self.rides or self.facts)


class Tracker:
    """Feeds telemetry into car cursors and ride tracking rows; collects the resulting facts."""

    # What one record can add to a commit at most: its car, two rides (one left, one followed), facts.
    MAX_ITEMS_PER_RECORD = 10

    def __init__(
        self,
        rules: Rules,
        cars: dict[str, CarCursor] | None = None,
        rides: dict[str, RideTracking] | None = None,
        shard: str | None = None,
    ) -> None:
        self.rules = rules
        self.shard = shard  # where the records come from (kept on the cursors)
        self.cars: dict[str, CarCursor] = cars or {}
        self.rides: dict[str, RideTracking] = rides or {}
        self.facts: list[Fact] = []
        self.ignored = 0
        self._dirty_cars: set[str] = set()
        self._dirty_rides: set[str] = set()
        self._eta_due: dict[str, CarTelemetry] = {}

    # ----------------------------------------------------------------------------- telemetry
    def observe(self, t: CarTelemetry) -> None:
        """Apply one record; a duplicate or out-of-order record (older than the car's last) is ignored."""
        cursor = self.cars.get(t.car_id)
        ride_id = t.ride_id if t.phase != CarPhase.IDLE else None
        if _stale(cursor, t) or (ride_id and self._is_completed(ride_id)):
            self.ignored += 1
            return
        if ride_id is None and (cursor is None or cursor.ride_id is None):
            return  # an idle car stays idle: nothing to track
        if cursor is None:
            cursor = self.cars[t.car_id] = CarCursor(t.car_id)
        known = cursor.sim_time is not None
        delta = max(0.0, t.odometer_m - cursor.odometer_m) if known else 0.0
        if cursor.ride_id and cursor.ride_id != ride_id:
            self._leave(cursor.ride_id, cursor, t, delta)
        if ride_id:
            self._follow(self._ride(ride_id), cursor, t, delta if cursor.ride_id == ride_id else 0.0)
        self._advance(cursor, t, ride_id)

    def _is_completed(self, ride_id: str) -> bool:
        ride = self.rides.get(ride_id)
        return bool(ride and ride.completed)

    def _ride(self, ride_id: str) -> RideTracking:
        ride = self.rides.get(ride_id)
        if ride is None:
            ride = self.rides[ride_id] = RideTracking(ride_id)
        return ride

    def _leave(self, ride_id: str, cursor: CarCursor, t: CarTelemetry, delta: float) -> None:
        """The car no longer carries ``ride_id``. Mid-trip, that completes the trip where the car reached
        its drop-off; anywhere else the car was lost (restarted, or sent elsewhere): a stall."""
        ride = self.rides.get(ride_id)
        self._eta_due.pop(ride_id, None)
        if (
            ride is None
            or ride.completed
            or ride.car_id != cursor.car_id
            or cursor.phase != CarPhase.TO_DESTINATION
        ):
            return
        leg = ride.legs.setdefault(cursor.car_id, CarLeg())
        leg.distance_m += delta
        ride.distance_m += delta
        self._dirty_rides.add(ride_id)
        if self._reached(cursor, t.lat, t.lon):
            leg.progress = None
            self._complete(ride, cursor.car_id, t.lat, t.lon, t.sim_time_s, t.at)
        else:  # where the ride was last seen: that is where the rider waits
            self._stall(ride, leg, cursor.car_id, Point(cursor.lat, cursor.lon), t.at)

    def _reached(self, cursor: CarCursor, lat: float, lon: float) -> bool:
        """The car's last record of its trip, or the one after it, is within the arrival radius of the
        drop-off."""
        target, radius = cursor.target, self.rules.arrival_radius_m
        return bool(
            target
            and min(
                haversine_m(cursor.lat, cursor.lon, target.lat, target.lon),
                haversine_m(lat, lon, target.lat, target.lon),
            )
            <= radius
        )

    def _complete(
        self, ride: RideTracking, car_id: str, lat: float, lon: float, sim_time: float, at: datetime
    ) -> None:
        start = ride.trip_started_sim if ride.trip_started_sim is not None else sim_time
        ride.completed = True
        ride.phase = COMPLETED
        ride.lat, ride.lon, ride.sim_time, ride.at = lat, lon, sim_time, at
        ride.completed_at = at
        ride.duration_s = round(max(0.0, sim_time - start), 1)
        ride.eta_seconds = 0.0
        self.facts.append(
            TripCompleted(
                ride_id=ride.ride_id,
                car_id=car_id,
                distance_meters=round(ride.distance_m, 1),
                duration_seconds=ride.duration_s,
                at=at,
            )
        )

    def _stall(self, ride: RideTracking, leg: CarLeg, car_id: str, where: Point, at: datetime) -> None:
        """``CarStalled`` once per ride and car."""
        if leg.stalled:
            return
        leg.stalled = True
        self._dirty_rides.add(ride.ride_id)
        self.facts.append(
            CarStalled(ride_id=ride.ride_id, car_id=car_id, lat=where.lat, lon=where.lon, at=at)
        )

    def lost(self, car_id: str, now_sim: float, at: datetime) -> None:
        """The car carried a ride and reported nothing while its shard went on to ``now_sim``: if its last
        record was at its drop-off the trip completed there; otherwise it stalled where it was last seen."""
        cursor = self.cars.get(car_id)
        if cursor is None or cursor.ride_id is None or cursor.sim_time is None:
            return
        if now_sim - cursor.sim_time < self.rules.stall_window_s:
            return  # it did report meanwhile
        ride = self.rides.get(cursor.ride_id)
        if ride is None or ride.completed or ride.car_id != car_id:
            return  # not its business any more (completed, or a replacement took it over)
        if cursor.phase == CarPhase.TO_DESTINATION and self._reached(cursor, cursor.lat, cursor.lon):
            self._dirty_rides.add(ride.ride_id)
            self._complete(ride, car_id, cursor.lat, cursor.lon, cursor.sim_time, ride.at or at)
            return
        self._stall(ride, ride.legs.setdefault(car_id, CarLeg()), car_id, Point(cursor.lat, cursor.lon), at)

    def _follow(self, ride: RideTracking, cursor: CarCursor, t: CarTelemetry, delta: float) -> None:
        """The car carries ``ride``: move it on, emit the milestones, watch its progress."""
        car_id = t.car_id
        leg = ride.legs.setdefault(car_id, CarLeg())
        if ride.car_id != car_id and (ride.car_id is None or not leg.stalled):
            ride.car_id = car_id  # a replacement car took the ride over (a stalled car never takes it back)
        if ride.car_id != car_id:
            return  # a stalled car that was replaced: the ride is no longer its business
        self._dirty_rides.add(ride.ride_id)
        if CarPhase.TO_DESTINATION in (cursor.phase, t.phase):
            leg.distance_m += delta
            ride.distance_m += delta
        ride.phase, ride.lat, ride.lon, ride.sim_time, ride.at = t.phase, t.lat, t.lon, t.sim_time_s, t.at
        ride.target = Point(t.target.lat, t.target.lon) if t.target else None
        self._milestones(ride, leg, t)
        changed = cursor.ride_id != ride.ride_id or cursor.phase != t.phase
        self._watch_progress(ride, leg, t, changed)
        if t.phase in MOVING:
            self._eta_due[ride.ride_id] = t
        else:
            self._eta_due.pop(ride.ride_id, None)

    def _milestones(self, ride: RideTracking, leg: CarLeg, t: CarTelemetry) -> None:
        if t.phase in (CarPhase.BOARDING, CarPhase.TO_DESTINATION) and not leg.arrived:
            leg.arrived = True
            self.facts.append(CarArrivedAtPickup(ride_id=ride.ride_id, car_id=t.car_id, at=t.at))
        if t.phase == CarPhase.TO_DESTINATION and not leg.started:
            leg.started = True
            if ride.trip_started_sim is None:
                ride.trip_started_sim, ride.trip_started_at = t.sim_time_s, t.at
            self.facts.append(TripStarted(ride_id=ride.ride_id, car_id=t.car_id, at=t.at))

    def _watch_progress(self, ride: RideTracking, leg: CarLeg, t: CarTelemetry, phase_changed: bool) -> None:
        """CarStalled once per ride and car after ``stall_window_s`` simulated seconds without progress."""
        here = Progress(t.lat, t.lon, t.sim_time_s)
        if t.phase not in WATCHED:
            leg.progress = None
            return
        last = leg.progress
        if last is None or (phase_changed and t.phase != CarPhase.STALLED):
            leg.progress = here
        elif haversine_m(last.lat, last.lon, t.lat, t.lon) >= self.rules.progress_m:
            leg.progress = here
        elif t.sim_time_s - last.sim_time >= self.rules.stall_window_s:
            self._stall(ride, leg, t.car_id, Point(t.lat, t.lon), t.at)

    def _advance(self, cursor: CarCursor, t: CarTelemetry, ride_id: str | None) -> None:
        key = _key(t)
        cursor.seen = [*cursor.seen, key] if cursor.sim_time == t.sim_time_s else [key]
        if cursor.phase != t.phase or cursor.ride_id != ride_id:
            cursor.samples = []  # a new leg: the speed window starts again
        horizon = t.sim_time_s - self.rules.speed_window_s
        cursor.samples = [s for s in cursor.samples if s[0] >= horizon] + [(t.sim_time_s, t.odometer_m)]
        cursor.ride_id, cursor.phase, cursor.sim_time = ride_id, t.phase, t.sim_time_s
        cursor.odometer_m, cursor.lat, cursor.lon = t.odometer_m, t.lat, t.lon
        cursor.target = Point(t.target.lat, t.target.lon) if t.target else None
        cursor.shard = self.shard or cursor.shard
        self._dirty_cars.add(cursor.car_id)

    # ----------------------------------------------------------------------------- ETA
    def flush_etas(self, now: datetime, remaining: Remaining) -> None:
        """One ``RideEtaUpdated`` per moving ride whose last push is ``eta_push_s`` wall seconds old."""
        due, self._eta_due = self._eta_due, {}
        for ride_id, t in due.items():
            ride = self.rides[ride_id]
            if not self._eta_wanted(ride, t, now) or t.target is None:
                continue
            route = remaining(t.lat, t.lon, t.target.lat, t.target.lon)
            if route is None:
                continue
            duration_s, distance_m = route
            speed = self.cars[t.car_id].average_speed(self.rules)
            eta = round(distance_m / speed if speed else duration_s, 1)
            ride.eta_seconds, ride.eta_pushed_at = eta, now
            self._dirty_rides.add(ride_id)
            self.facts.append(
                RideEtaUpdated(
                    ride_id=ride_id,
                    car_id=t.car_id,
                    phase="TO_PICKUP" if t.phase == CarPhase.TO_PICKUP else "TO_DESTINATION",
                    eta_seconds=eta,
                    lat=t.lat,
                    lon=t.lon,
                )
            )

    def _eta_wanted(self, ride: RideTracking, t: CarTelemetry, now: datetime) -> bool:
        """Not within ``eta_push_s`` of the last push, nor from a record older than ``eta_max_age_s``
        (catching up on a backlog: that position is history)."""
        pushed = ride.eta_pushed_at
        if pushed is not None and (now - pushed).total_seconds() < self.rules.eta_push_s:
            return False
        return (now - t.at).total_seconds() <= self.rules.eta_max_age_s

    # ----------------------------------------------------------------------------- commits
    def pending_items(self) -> int:
        """Transaction items the next commit needs (rows, facts, ETAs still due, the checkpoint)."""
        return len(self._dirty_cars) + len(self._dirty_rides) + len(self.facts) + len(self._eta_due) + 1

    def changes(self) -> Changes:
        return Changes(
            cars=[self.cars[c] for c in sorted(self._dirty_cars)],
            rides=[self.rides[r] for r in sorted(self._dirty_rides)],
            facts=list(self.facts),
        )

    def committed(self) -> None:
        """The changes are stored: versions move on, nothing is pending."""
        for car_id in self._dirty_cars:
            self.cars[car_id].version += 1
        for ride_id in self._dirty_rides:
            self.rides[ride_id].version += 1
        self._dirty_cars.clear()
        self._dirty_rides.clear()
        self.facts = []


@dataclass
class _ShardWatch:
    clock: float | None = None  # the newest simulated time among the shard's records
    at: datetime | None = None  # the wall-clock moment of that record
    last: dict[str, tuple[float, bool]] = field(default_factory=dict)  # car -> (its last sim time, carries)
    quiet: dict[str, tuple[float, datetime]] = field(default_factory=dict)  # car -> clock and wall moment
    # when it was first found quiet


class QuietCars:
    """Which cars carrying a ride went quiet while their shard went on (each shard fed by one thread).

    A shard's clock is the newest simulated time among its records, never the wall clock: while the whole
    simulator is down no shard goes on, and no car is lost. A car is quiet once the clock is ``window_s``
    past its last record, and lost once the clock is another ``window_s`` past the moment it was first
    found quiet: a restarted simulator reports every car at once, before the clock gets that far, so a car
    that is still there is never taken for lost. With simulator replicas, the other cars of the shard go on
    while a dead replica's car groups change hands: a car is lost only once ``handover_s`` wall seconds have
    passed as well, so a handover (two lease periods at most) loses no car."""

    def __init__(self, window_s: float, handover_s: float = 0.0) -> None:
        self.window_s = window_s
        self.handover_s = handover_s
        self._shards: dict[str, _ShardWatch] = {}

    def _shard(self, shard: str) -> _ShardWatch:
        return self._shards.setdefault(shard, _ShardWatch())

    def drop(self, shard: str) -> None:
        """Forget everything watched on ``shard`` (another replica read it meanwhile)."""
        self._shards.pop(shard, None)

    def watch(self, shard: str, car_id: str, sim_time: float) -> None:
        """A car known to carry a ride, last seen at ``sim_time`` (as stored, before a restart)."""
        self._shard(shard).last.setdefault(car_id, (sim_time, True))

    def observe(self, shard: str, t: CarTelemetry) -> None:
        """A record of the shard: the clock moves on, the car is heard (an older record changes nothing)."""
        watch = self._shard(shard)
        if watch.clock is None or t.sim_time_s > watch.clock:
            watch.clock, watch.at = t.sim_time_s, t.at
        last = watch.last.get(t.car_id)
        if last is not None and t.sim_time_s < last[0]:
            return
        watch.last[t.car_id] = (t.sim_time_s, t.phase != CarPhase.IDLE and t.ride_id is not None)
        watch.quiet.pop(t.car_id, None)

    def lost(self, shard: str) -> list[str]:
        """The cars of ``shard`` that carry a ride and are lost by now."""
        watch = self._shards.get(shard)
        if watch is None or watch.clock is None or watch.at is None:
            return []
        lost = []
        for car_id, (sim_time, carries) in watch.last.items():
            if not carries or watch.clock - sim_time < self.window_s:
                continue
            since, since_at = watch.quiet.setdefault(car_id, (watch.clock, watch.at))
            silent_s = (watch.at - since_at).total_seconds()
            if watch.clock - since >= self.window_s and silent_s >= self.handover_s:
                lost.append(car_id)
        return lost

    def clock(self, shard: str) -> tuple[float, datetime] | None:
        """The shard's newest simulated time and its wall-clock moment (None before any record)."""
        watch = self._shards.get(shard)
        if watch is None or watch.clock is None or watch.at is None:
            return None
        return watch.clock, watch.at

    def forget(self, shard: str, car_id: str) -> None:
        """The lost car was dealt with: it is not watched again until it reports a ride."""
        watch = self._shard(shard)
        sim_time, _ = watch.last.get(car_id, (-math.inf, False))
        watch.last[car_id] = (sim_time, False)
        watch.quiet.pop(car_id, None)


# --------------------------------------------------------------------------------- helpers
def _key(t: CarTelemetry) -> str:
    return f"{t.phase}|{t.ride_id or ''}"


def _stale(cursor: CarCursor | None, t: CarTelemetry) -> bool:
    """Older than the car's last record, or the same record again."""
    if cursor is None or cursor.sim_time is None:
        return False
    if t.sim_time_s < cursor.sim_time:
        return True
    return t.sim_time_s == cursor.sim_time and _key(t) in cursor.seen
