"""The City facade: addresses, routing, dispatch ETAs, map data; and `load_city`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .addresses import AddressBook
from .cache import cache_path, default_cache_dir, ensure_cached, load_or_build
from .data import CityData
from .generator import SPECS, generate
from .geo import Projection, haversine_m
from .mapview import StreetPieces
from .model import Address, Bounds, CarEta, InvalidQuery, OutsideServiceArea, Poi, Route
from .network import build_city_data, haversine_array
from .routing import Router, decode

LEG_SPEED_MS = 25 / 3.6  # off-graph legs (door <-> nearest node) at local street speed
TOP_SPEED_MS = 90 / 3.6


class City:
    """A routable, addressable city built from CityData (synthetic or OSM)."""

    def __init__(self, data: CityData) -> None:
        """Build the in-memory indexes (names, KD-trees, CSR graph) over `data`."""
        self.data = data
        self.name: str = data.name
        self.bounds = Bounds(*(float(v) for v in data.bounds))
        self._proj = Projection(float(data.origin[0]), float(data.origin[1]))
        self._book = AddressBook(data, self._proj)
        self._router = Router(data, self._proj)

    # ----- sizes and lookups -------------------------------------------------------------
    @property
    def address_count(self) -> int:
        """Number of street addresses."""
        return self._book.count

    @property
    def node_count(self) -> int:
        """Number of drivable graph nodes (one strongly connected component)."""
        return self._router.n

    @cached_property
    def pois(self) -> list[Poi]:
        """Named points of interest; each is found by geocode/autocomplete of its name."""
        return self._book.pois()

    def autocomplete(self, q: str, limit: int = 5) -> list[Address]:
        """Prefix and 1-typo tolerant suggestions, best first."""
        return self._book.autocomplete(q, limit)

    def geocode(self, q: str) -> tuple[Address, float] | None:
        """Best match and confidence 0..1, or None."""
        return self._book.geocode(q)

    def reverse(self, lat: float, lon: float) -> tuple[Address, float]:
        """Nearest address and its distance in metres."""
        self._check(lat, lon)
        row, dist = self._book.nearest_row(lat, lon)
        return self._book.row_address(row), dist

    def address(self, address_id: str) -> Address | None:
        """Address (or POI address) by id."""
        return self._book.by_id(address_id)

    def snap(self, lat: float, lon: float) -> tuple[float, float]:
        """Nearest point (graph node) of the drivable network."""
        self._check(lat, lon)
        node, _ = self._router.snap(lat, lon)
        return float(self.data.node_lat[node]), float(self.data.node_lon[node])

    # ----- routing -------------------------------------------------------------------------
    def route(self, from_lat: float, from_lon: float, to_lat: float, to_lon: float) -> Route | None:
        """Fastest route with its polyline, or None if unreachable."""
        return self._route(from_lat, from_lon, to_lat, to_lon, with_path=True)

    def travel_time(
        self, from_lat: float, from_lon: float, to_lat: float, to_lon: float
    ) -> tuple[float, float] | None:
        """(duration_s, distance_m) of the fastest route, without building the polyline."""
        found = self._route(from_lat, from_lon, to_lat, to_lon, with_path=False)
        return None if found is None else (found.duration_s, found.distance_m)

    def _route(self, flat: float, flon: float, tlat: float, tlon: float, with_path: bool) -> Route | None:
        self._check(flat, flon)
        self._check(tlat, tlon)
        source, target = self._router.snap(flat, flon)[0], self._router.snap(tlat, tlon)[0]
        lat, lon = self.data.node_lat, self.data.node_lon
        leg_m = haversine_m(flat, flon, float(lat[source]), float(lon[source]))
        leg_m += haversine_m(tlat, tlon, float(lat[target]), float(lon[target]))
        meeting, pred_f, pred_b = self._router.meet(source, target, haversine_m(flat, flon, tlat, tlon))
        if not math.isfinite(meeting.weight):
            return None
        seconds, metres = (float(v) for v in decode(meeting.weight))
        path: list[tuple[float, float]] = []
        if with_path:
            nodes = self._router.path_nodes(meeting, pred_f, pred_b)
            path = [(flat, flon), *zip(lat[nodes].tolist(), lon[nodes].tolist(), strict=True), (tlat, tlon)]
        return Route(round(metres + leg_m, 1), round(seconds + leg_m / LEG_SPEED_MS, 1), path)

    def etas_to(
        self, pickup_lat: float, pickup_lon: float, cars: Sequence[tuple[str, float, float]], max_eta_s: float
    ) -> list[CarEta]:
        """Road ETA of each car to the pickup within `max_eta_s`, ascending.

        One bounded reverse Dijkstra from the pickup. Its bound starts at a generous estimate
        from the cars' straight-line distances and is raised to `max_eta_s` (a second search)
        only if some car could still be within the bound. Cars with invalid or outside
        coordinates are ignored.
        """
        self._check(pickup_lat, pickup_lon)
        if not (isinstance(max_eta_s, int | float) and math.isfinite(max_eta_s) and max_eta_s > 0):
            raise InvalidQuery("max_eta_s must be a positive finite number")
        valid = [c for c in cars if self.bounds.contains(c[1], c[2])]
        if not valid:
            return []
        ids = [c[0] for c in valid]
        clat = np.array([c[1] for c in valid], dtype=np.float64)
        clon = np.array([c[2] for c in valid], dtype=np.float64)
        target = self._router.snap(pickup_lat, pickup_lon)[0]
        lat, lon = self.data.node_lat, self.data.node_lon
        pickup_leg = haversine_m(pickup_lat, pickup_lon, float(lat[target]), float(lon[target]))
        px, py = self._proj.point_xy(pickup_lat, pickup_lon)
        cx, cy = self._proj.to_xy(clat, clon)
        straight = np.hypot(cx - px, cy - py)
        candidate = straight / TOP_SPEED_MS <= max_eta_s
        if not candidate.any():
            return []
        nodes = self._router.snap_many(clat, clon)[0]
        legs = haversine_array(clat, clon, lat[nodes], lon[nodes])
        bound = min(max_eta_s, 1.6 * float(straight[candidate].max()) / 8.0 + 120.0)
        costs = self._router.reverse_costs(int(target), bound)[nodes]
        if bound < max_eta_s and bool((candidate & ~np.isfinite(costs)).any()):
            costs = self._router.reverse_costs(int(target), max_eta_s)[nodes]
        seconds, metres = decode(np.where(np.isfinite(costs), costs, 0.0))
        eta = seconds + (legs + pickup_leg) / LEG_SPEED_MS
        keep = np.flatnonzero(np.isfinite(costs) & candidate & (eta <= max_eta_s))
        result = [
            CarEta(ids[i], round(float(eta[i]), 1), round(float(metres[i] + legs[i] + pickup_leg), 1))
            for i in keep
        ]
        result.sort(key=lambda e: (e.eta_s, e.car_id))
        return result

    # ----- map -----------------------------------------------------------------------------
    @cached_property
    def _pieces(self) -> StreetPieces:
        return StreetPieces(self.data)

    def map_view(
        self,
        min_lon: float,
        min_lat: float,
        max_lon: float,
        max_lat: float,
        zoom: int,
        max_points: int = 20000,
    ) -> dict[str, Any]:
        """Simplified street polylines intersecting the view (major streets only at low zoom)."""
        box = (min_lon, min_lat, max_lon, max_lat)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in box):
            raise OutsideServiceArea("view box must be finite numbers")
        if min_lon > max_lon or min_lat > max_lat:
            raise InvalidQuery("view box is inverted")
        if max_points < 0:
            raise InvalidQuery("max_points must be >= 0")
        return {
            "bounds": self.bounds.as_list(),
            "streets": self._pieces.view(box, int(zoom), int(max_points)),
        }

    def _check(self, lat: float, lon: float) -> None:
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            raise OutsideServiceArea("coordinates must be numbers")
        if not self.bounds.contains(lat, lon):
            raise OutsideServiceArea(f"({lat}, {lon}) is outside {self.name}")


def load_city(
    spec: str = "small",
    seed: int = 42,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> City:
    """Build or load a city: "small" or "full" (cached on disk), "osm:<file.osm.pbf>", "osm:helsinki-test"."""
    say = progress or (lambda _msg: None)
    return City(load_city_data(spec, seed, cache_dir, say))


def load_city_data(
    spec: str, seed: int, cache_dir: str | Path | None, progress: Callable[[str], None]
) -> CityData:
    """The CityData behind `load_city` (deterministic for a given spec and seed); generated cities are
    cached on disk, built once however many processes ask at the same time."""
    if spec.startswith("osm:"):
        from .osm import read_osm

        progress(f"reading OSM extract {spec[4:]}")
        return build_city_data(read_osm(spec[4:], seed))
    return load_or_build(
        city_cache_path(spec, seed, cache_dir), lambda: generate_city_data(spec, seed, progress), progress
    )


def prepare_city(spec: str, seed: int, cache_dir: str | Path | None, progress: Callable[[str], None]) -> Path:
    """Make sure the cache holds the generated city `spec` (build it if not) and return its file."""
    path = city_cache_path(spec, seed, cache_dir)
    ensure_cached(path, lambda: generate_city_data(spec, seed, progress), progress)
    return path


def city_cache_path(spec: str, seed: int, cache_dir: str | Path | None) -> Path:
    """Where the generated city `spec` is cached (`cache_dir`, else the default cache folder)."""
    if spec not in SPECS:
        raise ValueError(f"unknown city spec {spec!r}; use one of {sorted(SPECS)} or 'osm:<path>'")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cache_path(folder, spec, seed)


def generate_city_data(spec: str, seed: int, progress: Callable[[str], None]) -> CityData:
    """Build the generated city `spec` from scratch, bypassing the cache."""
    raw = generate(SPECS[spec], seed, progress)
    progress("building graph, addresses and postcodes")
    return build_city_data(raw)
