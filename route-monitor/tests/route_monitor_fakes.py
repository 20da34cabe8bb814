"""Synthetic telemetry for the route-monitor tests: cars driving north in straight lines."""

from __future__ import annotations

from datetime import UTC, datetime

from acr import catalog
from acr.catalog.car import CarTelemetry, Target
from acr.stream import StreamRecord

WALL0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SIM_SPEED = 30.0
M_PER_DEG_LAT = 111_195.0
LAT0, LON0 = 60.160, 24.940


def north(meters: float, lat: float = LAT0) -> float:
    return lat + meters / M_PER_DEG_LAT


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def wall(sim: float) -> float:
    """The wall time at which the simulator emits the record of simulated second ``sim``."""
    return WALL0 + sim / SIM_SPEED


class Car:
    """A car on the meridian LON0 whose position is ``at_m`` metres north of LAT0."""

    def __init__(self, car_id: str, at_m: float = 0.0, lon: float = LON0) -> None:
        self.car_id = car_id
        self.at_m = at_m
        self.lon = lon
        self.odometer = 10_000.0

    def record(
        self, sim: float, phase: str, ride_id: str | None, target_m: float | None = None, move_m: float = 0.0
    ) -> CarTelemetry:
        self.at_m += move_m
        self.odometer += abs(move_m)
        target = Target(lat=north(target_m), lon=self.lon) if target_m is not None else None
        return CarTelemetry(
            car_id=self.car_id,
            ride_id=ride_id,
            phase=phase,
            lat=north(self.at_m),
            lon=self.lon,
            speed_kmh=24.0 if move_m else 0.0,
            heading=0.0,
            battery=80.0,
            odometer_m=self.odometer,
            target=target,
            sim_time_s=sim,
            at=iso(wall(sim)),
        )


def whole_ride(
    car: Car,
    ride_id: str,
    t0: float = 0.0,
    pickup_m: float = 400.0,
    trip_m: float = 500.0,
    step_m: float = 100.0,
    step_s: float = 15.0,
    boarding_s: float = 60.0,
) -> list[CarTelemetry]:
    """TO_PICKUP step by step, BOARDING, TO_DESTINATION, IDLE at the drop-off; phase changes recorded."""
    out: list[CarTelemetry] = []
    sim = t0
    pickup_at = car.at_m + pickup_m
    dropoff_at = pickup_at + trip_m
    out.append(car.record(sim, "TO_PICKUP", ride_id, pickup_at))
    while car.at_m + step_m < pickup_at - 1e-6:
        sim += step_s
        out.append(car.record(sim, "TO_PICKUP", ride_id, pickup_at, step_m))
    sim += step_s
    out.append(car.record(sim, "BOARDING", ride_id, pickup_at, pickup_at - car.at_m))
    sim += boarding_s
    out.append(car.record(sim, "TO_DESTINATION", ride_id, dropoff_at))
    while car.at_m + step_m < dropoff_at - 1e-6:
        sim += step_s
        out.append(car.record(sim, "TO_DESTINATION", ride_id, dropoff_at, step_m))
    sim += step_s
    out.append(car.record(sim, "TO_DESTINATION", ride_id, dropoff_at, dropoff_at - car.at_m))
    out.append(car.record(sim, "IDLE", None))
    return out


def stream_records(telemetry: list[CarTelemetry], first: int = 1) -> list[StreamRecord]:
    """Telemetry as the Kinesis reader hands it over (increasing sequence numbers)."""
    records = []
    for n, t in enumerate(telemetry, start=first):
        event = catalog.record(t, subject=t.car_id)
        records.append(StreamRecord(f"{n:020d}", t.car_id, event, t))
    return records


def names(facts: list[object]) -> list[str]:
    return [type(f).__name__ for f in facts]
