"""The simulated car: a state machine that drives along street polylines. Pure Python, no I/O.

Time here is always SIMULATED seconds; the wall clock (and how often a car reports) lives in
``simulation.py``. A car's phases for one ride: TO_PICKUP -> BOARDING -> TO_DESTINATION -> IDLE.
A stalled car freezes (phase STALLED, ride and target kept) until it is unstalled, released or
taken out of service.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from acr.catalog.car import CarPhase
from acr.geo import haversine_m
from acr.ordering import Order, order

BATTERY_PER_M = 0.0002  # percent of charge per metre driven: 100 km use 20 %
CLOSED_RIDES_KEPT = 16
STRAIGHT_SPEED_MS = 25 / 3.6  # local street speed, as the city uses for off-graph legs


DRIVING = (CarPhase.TO_PICKUP, CarPhase.TO_DESTINATION)


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def bearing_deg(a: Point, b: Point) -> float:
    """Initial compass bearing from ``a`` to ``b``, 0..360 (0 = north)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


class Leg:
    """One drive along a polyline that takes ``duration_s`` simulated seconds (constant average speed:
    the route gives a duration for the whole path, so the car covers the polyline in exactly that time)."""

    def __init__(self, path: Sequence[tuple[float, float]], duration_s: float) -> None:
        if not path:
            raise ValueError("a leg needs at least one point")
        self.points = [Point(lat, lon) for lat, lon in path]
        self.cumulative = [0.0]
        for a, b in zip(self.points, self.points[1:], strict=False):
            self.cumulative.append(self.cumulative[-1] + haversine_m(a.lat, a.lon, b.lat, b.lon))
        self.length_m = self.cumulative[-1]
        self.duration_s = max(0.0, duration_s)
        self.speed_ms = self.length_m / self.duration_s if self.duration_s > 0 else math.inf

    def __eq__(self, other: object) -> bool:
        """The same drive: the same points in the same time."""
        if not isinstance(other, Leg):
            return NotImplemented
        return self.points == other.points and self.duration_s == other.duration_s

    __hash__ = None  # type: ignore[assignment]  # equal by value, and never a key

    @property
    def path(self) -> list[tuple[float, float]]:
        """The polyline as (lat, lon) pairs, as the leg was made from."""
        return [(p.lat, p.lon) for p in self.points]

    @property
    def start(self) -> Point:
        return self.points[0]

    @property
    def end(self) -> Point:
        return self.points[-1]

    def time_left_s(self, travelled_m: float) -> float:
        if self.speed_ms == math.inf:
            return 0.0
        return max(0.0, self.length_m - travelled_m) / self.speed_ms

    def at(self, travelled_m: float) -> tuple[Point, float | None]:
        """Position after ``travelled_m`` metres and the heading of the segment there (None: no segment)."""
        if travelled_m >= self.length_m:
            return self.end, self._heading(len(self.points) - 1)
        i = max(0, bisect_right(self.cumulative, travelled_m) - 1)
        a, b = self.points[i], self.points[i + 1]
        span = self.cumulative[i + 1] - self.cumulative[i]
        f = (travelled_m - self.cumulative[i]) / span if span > 0 else 0.0
        return Point(a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f), self._heading(i + 1)

    def _heading(self, upto: int) -> float | None:
        """Heading of the last non-degenerate segment ending at or before point ``upto``."""
        for j in range(min(upto, len(self.points) - 1), 0, -1):
            if self.cumulative[j] > self.cumulative[j - 1]:
                return bearing_deg(self.points[j - 1], self.points[j])
        return None


def initial_battery(seed: int, car_id: str) -> float:
    """A charge between 60 and 100 %, the same for a car on every run with the same seed."""
    return round(random.Random(f"acr-battery-{seed}-{car_id}").uniform(60.0, 100.0), 1)  # noqa: S311


def straight_leg(start: Point, end: Point, speed_ms: float = STRAIGHT_SPEED_MS) -> Leg:
    """A straight drive at ``speed_ms`` (for a pair of places the street graph cannot route)."""
    distance = haversine_m(start.lat, start.lon, end.lat, end.lon)
    return Leg([(start.lat, start.lon), (end.lat, end.lon)], distance / speed_ms)


@dataclass(frozen=True)
class Telemetry:
    """What a car reports at one simulated instant (the wire record is built from this by an adapter)."""

    car_id: str
    ride_id: str | None
    phase: CarPhase
    lat: float
    lon: float
    speed_kmh: float
    heading: float
    battery: float
    odometer_m: float
    target: Point | None
    sim_time_s: float


@dataclass(frozen=True)
class Assignment:
    """Everything a car needs to serve one ride: both legs are computed before the car takes them.
    ``sequence`` is that of its ``CarAssigned`` (the ride's dispatch count; None if it carried none)."""

    ride_id: str
    pickup: Point
    dropoff: Point
    to_pickup: Leg
    to_dropoff: Leg
    boarding_s: float
    sequence: int | None = None


@dataclass
class Car:
    """One simulated car. Methods that change the phase return True when it changed (so it is reported).

    ``version`` is the version of the car's stored row: each command the car obeyed (an assignment, a
    release, out of service) is stored at the next version, in the transaction of the message's marker."""

    car_id: str
    lat: float
    lon: float
    battery: float = 100.0
    odometer_m: float = 0.0
    heading: float = 0.0
    activity: CarPhase = CarPhase.IDLE  # what the car does when it is not stalled
    ride_id: str | None = None
    target: Point | None = None
    stalled: bool = False
    assignment: Assignment | None = None
    leg: Leg | None = None
    travelled_m: float = 0.0
    boarding_left_s: float = 0.0
    closed_rides: deque[str] = field(default_factory=lambda: deque(maxlen=CLOSED_RIDES_KEPT))
    version: int = 0

    @property
    def phase(self) -> CarPhase:
        return CarPhase.STALLED if self.stalled else self.activity

    @property
    def position(self) -> Point:
        return Point(self.lat, self.lon)

    @property
    def moving(self) -> bool:
        return self.phase in DRIVING

    @property
    def progressing(self) -> bool:
        """Serving a ride and not stalled: driving or boarding, so where it is changes with time."""
        return self.ride_id is not None and not self.stalled

    def state_key(self) -> tuple[object, ...]:
        """What commands change (phase, ride, assignment, closed rides) and the row's version: the car's
        stored row is behind whenever this differs from the one it was saved with."""
        return (
            self.version,
            self.activity,
            self.stalled,
            self.ride_id,
            self.assignment,
            tuple(self.closed_rides),
        )

    def copy(self) -> Car:
        """An independent copy (a command is tried on it before the car obeys)."""
        return replace(self, closed_rides=deque(self.closed_rides, maxlen=CLOSED_RIDES_KEPT))

    @property
    def speed_kmh(self) -> float:
        if not self.moving or self.leg is None or self.leg.speed_ms == math.inf:
            return 0.0
        return self.leg.speed_ms * 3.6

    def telemetry(self, sim_time_s: float, speed_kmh: float | None = None) -> Telemetry:
        return Telemetry(
            car_id=self.car_id,
            ride_id=self.ride_id,
            phase=self.phase,
            lat=self.lat,
            lon=self.lon,
            speed_kmh=round(self.speed_kmh if speed_kmh is None else speed_kmh, 2),
            heading=round(self.heading, 1),
            battery=round(self.battery, 3),
            odometer_m=round(self.odometer_m, 2),
            target=self.target,
            sim_time_s=round(sim_time_s, 3),
        )

    def resume(self) -> Car:
        """Take up the leg and target its activity and assignment imply (a car read back from its row)."""
        assignment = self.assignment
        self.leg, self.target = None, None
        if assignment is not None and self.activity is CarPhase.TO_PICKUP:
            self.leg, self.target = assignment.to_pickup, assignment.pickup
        elif assignment is not None and self.activity is CarPhase.TO_DESTINATION:
            self.leg, self.target = assignment.to_dropoff, assignment.dropoff
        return self

    # ----- commands -------------------------------------------------------------------------
    def is_serving(self, ride_id: str) -> bool:
        return self.ride_id == ride_id and self.assignment is not None

    def accepts(self, assignment: Assignment) -> bool:
        """False for a ride this car already finished or was released from (an assignment that arrives after
        its release), and for one of the ride it serves that is not newer, by the ``sequence`` of the ride's
        dispatch, than the one it applied (a repeat). A car hears only the assignments that name it, so a
        gap is no reason to wait (``gapless=False``); without sequences, serving the ride is enough."""
        if assignment.ride_id in self.closed_rides:
            return False
        if not self.is_serving(assignment.ride_id):
            return True
        applied = self.assignment.sequence if self.assignment is not None else None
        if applied is None or assignment.sequence is None:
            return False
        return order(applied, assignment.sequence, gapless=False) is Order.APPLY

    def assign(self, assignment: Assignment) -> bool:
        """Drive to the pickup (a stall or another ride is abandoned: the dispatcher decides)."""
        if not self.accepts(assignment):
            return False
        if self.ride_id and self.ride_id != assignment.ride_id:
            self.closed_rides.append(self.ride_id)
        self.stalled = False
        self.assignment = assignment
        self.ride_id = assignment.ride_id
        self._start_leg(CarPhase.TO_PICKUP, assignment.to_pickup, assignment.pickup)
        return True

    def release(self, ride_id: str) -> bool:
        """Stop serving ``ride_id`` and idle where the car is (STALLED stays STALLED)."""
        if ride_id not in self.closed_rides:
            self.closed_rides.append(ride_id)
        if self.ride_id != ride_id:
            return False
        self._drop_ride()
        return True

    def take_out_of_service(self) -> bool:
        """Stop where it is, without a ride: STALLED if it was stalled, else IDLE."""
        before = (self.phase, self.ride_id)
        if self.ride_id:
            self.closed_rides.append(self.ride_id)
        self._drop_ride()
        return (self.phase, self.ride_id) != before

    def stall(self) -> bool:
        if self.stalled:
            return False
        self.stalled = True
        return True

    def unstall(self) -> bool:
        """Resume what the car was doing (the leg, the boarding) before the stall."""
        if not self.stalled:
            return False
        self.stalled = False
        return True

    # ----- time -----------------------------------------------------------------------------
    def advance(self, dt_s: float, start_s: float) -> list[Telemetry]:
        """Let ``dt_s`` simulated seconds pass from ``start_s``; returns the records of every phase change
        on the way (with their exact simulated time and position), in order."""
        changes: list[Telemetry] = []
        now, left = start_s, dt_s
        while left > 0 and not self.stalled:
            if self.activity in DRIVING and self.leg is not None:
                need = self.leg.time_left_s(self.travelled_m)
                if need > left:
                    self._drive(self.travelled_m + left * self.leg.speed_ms)
                    return changes
                self._drive(self.leg.length_m)
                now, left = now + need, left - need
                changes += self._arrive(now)
            elif self.activity is CarPhase.BOARDING:
                if self.boarding_left_s > left:
                    self.boarding_left_s -= left
                    return changes
                now, left = now + self.boarding_left_s, left - self.boarding_left_s
                self.boarding_left_s = 0.0
                self._start_trip()
                changes.append(self.telemetry(now))
            else:
                break
        return changes

    # ----- internals ------------------------------------------------------------------------
    def _start_leg(self, phase: CarPhase, leg: Leg, target: Point) -> None:
        self.activity, self.leg, self.travelled_m, self.target = phase, leg, 0.0, target
        self.lat, self.lon = leg.start.lat, leg.start.lon
        heading = leg.at(0.0)[1]
        if heading is not None:
            self.heading = heading

    def _drive(self, travelled_m: float) -> None:
        assert self.leg is not None
        travelled_m = min(travelled_m, self.leg.length_m)
        delta = max(0.0, travelled_m - self.travelled_m)
        point, heading = self.leg.at(travelled_m)
        self.travelled_m = travelled_m
        self.lat, self.lon = point.lat, point.lon
        if heading is not None:
            self.heading = heading
        self.odometer_m += delta
        self.battery = max(0.0, self.battery - delta * BATTERY_PER_M)

    def _arrive(self, now: float) -> list[Telemetry]:
        """The last record of the leg exactly at its end (speed 0), then the record of the next phase."""
        arrived = self.telemetry(now, speed_kmh=0.0)
        assert self.assignment is not None
        if self.activity is CarPhase.TO_PICKUP:
            self.activity, self.leg, self.boarding_left_s = (
                CarPhase.BOARDING,
                None,
                self.assignment.boarding_s,
            )
            self.target = None
        else:
            self.closed_rides.append(self.assignment.ride_id)
            self._drop_ride()
        return [arrived, self.telemetry(now)]

    def _start_trip(self) -> None:
        assert self.assignment is not None
        self._start_leg(CarPhase.TO_DESTINATION, self.assignment.to_dropoff, self.assignment.dropoff)

    def _drop_ride(self) -> None:
        self.assignment, self.leg, self.ride_id, self.target = None, None, None, None
        self.travelled_m = self.boarding_left_s = 0.0
        self.activity = CarPhase.IDLE


@dataclass(frozen=True)
class Snapshot:
    """A copy of a car at one simulated instant: what its stored row holds."""

    car: Car
    sim_time_s: float


# ----- the fleet split between replicas ---------------------------------------------------------
CAR_GROUPS = 16
"""The fleet is driven in this many groups; a replica drives the groups whose lease it holds."""


def car_group(car_id: str) -> str:
    """The lease key of the car's group, ``cars#<n>``: a stable hash of the id (the same in every process
    and on every run, unlike ``hash``)."""
    return f"cars#{zlib.crc32(car_id.encode()) % CAR_GROUPS}"


GROUPS = [f"cars#{n}" for n in range(CAR_GROUPS)]


class CommandKind(StrEnum):
    ASSIGN = "ASSIGN"
    RELEASE = "RELEASE"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"
    STALL = "STALL"
    UNSTALL = "UNSTALL"


@dataclass(frozen=True)
class CarCommand:
    """What a car is told, as its group's mailbox keeps it until the replica driving the car applies it.
    ``command_id`` is the consumed message's id (or a fresh one for an operator's call): a command is
    removed from the mailbox by id, in the transaction that stores what it did to the car."""

    command_id: str
    car_id: str
    kind: CommandKind
    ride_id: str | None = None
    pickup: Point | None = None
    dropoff: Point | None = None
    sequence: int | None = None  # an assignment's: the CloudEvent sequence of its CarAssigned

    @property
    def group(self) -> str:
        return car_group(self.car_id)
