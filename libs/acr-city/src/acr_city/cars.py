"""Nearest-available-car index: a self-resizing uniform grid searched in growing rings."""

from __future__ import annotations

import math
from functools import lru_cache

from .geo import Projection
from .model import Bounds, OutsideServiceArea

TARGET_PER_CELL = 4.0
MIN_CELL_M = 25.0


class CarIndex:
    """Positions of cars; `nearest` returns only available ones, by straight-line metres.

    Cells hold dicts car_id -> (x, y) of available cars. The cell size follows the number of
    available cars (about TARGET_PER_CELL per cell), rebuilt when it doubles or drops to a quarter.
    """

    def __init__(self, bounds: Bounds) -> None:
        """Create an empty index for cars inside (or near) `bounds`."""
        self.bounds = bounds
        self._proj = Projection((bounds.min_lat + bounds.max_lat) / 2, (bounds.min_lon + bounds.max_lon) / 2)
        x0, y0 = self._proj.point_xy(bounds.min_lat, bounds.min_lon)
        x1, y1 = self._proj.point_xy(bounds.max_lat, bounds.max_lon)
        self._area = max(1.0, (x1 - x0) * (y1 - y0))
        self._cars: dict[str, tuple[float, float, bool]] = {}
        self._cells: dict[tuple[int, int], dict[str, tuple[float, float]]] = {}
        self._available = 0
        self._cell_m = self._cell_size(1)
        self._sized_for = 1
        self._span = (0, 0, 0, 0)  # min cx, min cy, max cx, max cy ever used

    def __len__(self) -> int:
        """Number of cars known (available or not)."""
        return len(self._cars)

    @property
    def available_count(self) -> int:
        """Number of available cars."""
        return self._available

    def _cell_size(self, available: int) -> float:
        return max(MIN_CELL_M, math.sqrt(self._area * TARGET_PER_CELL / max(1, available)))

    def _key(self, x: float, y: float) -> tuple[int, int]:
        return int(x // self._cell_m), int(y // self._cell_m)

    def _project(self, lat: float, lon: float) -> tuple[float, float]:
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            raise OutsideServiceArea(f"invalid coordinate ({lat}, {lon})")
        return self._proj.point_xy(lat, lon)

    def upsert(self, car_id: str, lat: float, lon: float, available: bool) -> None:
        """Insert or move a car and set its availability."""
        x, y = self._project(lat, lon)
        self._discard(car_id)
        self._cars[car_id] = (x, y, available)
        if available:
            self._place(car_id, x, y)
            self._available += 1
            self._maybe_resize()

    def remove(self, car_id: str) -> None:
        """Forget a car (no error if unknown)."""
        self._discard(car_id)
        self._cars.pop(car_id, None)

    def _discard(self, car_id: str) -> None:
        old = self._cars.get(car_id)
        if old is None or not old[2]:
            return
        key = self._key(old[0], old[1])
        cell = self._cells[key]
        del cell[car_id]
        if not cell:
            del self._cells[key]
        self._available -= 1

    def _place(self, car_id: str, x: float, y: float) -> None:
        key = self._key(x, y)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = {}
            a, b, c, d = self._span
            self._span = (min(a, key[0]), min(b, key[1]), max(c, key[0]), max(d, key[1]))
        cell[car_id] = (x, y)

    def _maybe_resize(self) -> None:
        n = max(1, self._available)
        if n > 2 * self._sized_for or 4 * n < self._sized_for:
            self._rebuild(n)

    def _rebuild(self, n: int) -> None:
        self._sized_for = n
        self._cell_m = self._cell_size(n)
        self._cells = {}
        self._span = (0, 0, 0, 0)
        for car_id, (x, y, available) in self._cars.items():
            if available:
                self._place(car_id, x, y)

    def nearest(self, lat: float, lon: float, k: int = 10) -> list[tuple[str, float]]:
        """Up to k available cars as (car_id, metres), nearest first (ties by car_id)."""
        qx, qy = self._project(lat, lon)
        if k <= 0 or not self._available:
            return []
        cx, cy = self._key(qx, qy)
        a, b, c, d = self._span
        max_ring = max(cx - a, cy - b, c - cx, d - cy, 0)
        size = self._cell_m
        inner = min(qx - cx * size, (cx + 1) * size - qx, qy - cy * size, (cy + 1) * size - qy)
        found: list[tuple[float, str]] = []
        cells = self._cells
        for ring in range(max_ring + 1):
            for dx, dy in _ring_offsets(ring):
                cell = cells.get((cx + dx, cy + dy))
                if cell:
                    found.extend([((x - qx) ** 2 + (y - qy) ** 2, cid) for cid, (x, y) in cell.items()])
            # every car outside the searched square is farther than `inner + ring * size`
            if len(found) >= k:
                found.sort()
                reach = inner + ring * size
                if found[k - 1][0] <= reach * reach:
                    break
        found.sort()
        return [(cid, math.sqrt(d2)) for d2, cid in found[:k]]


@lru_cache(maxsize=256)
def _ring_offsets(ring: int) -> tuple[tuple[int, int], ...]:
    """Cell offsets at Chebyshev distance exactly `ring`."""
    if ring == 0:
        return ((0, 0),)
    cells = [(i, ring) for i in range(-ring, ring + 1)] + [(i, -ring) for i in range(-ring, ring + 1)]
    cells += [(-ring, j) for j in range(-ring + 1, ring)] + [(ring, j) for j in range(-ring + 1, ring)]
    return tuple(cells)
