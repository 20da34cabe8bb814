"""Street polylines for map rendering: pieces, zoom filtering, simplification, payload cap."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .data import CityData

EQUATOR_M_PER_PX = 156_543.03
M_PER_DEG_LAT = 111_320.0


def min_speed_for_zoom(zoom: int) -> float:
    """At low zoom only major streets are drawn."""
    if zoom <= 11:
        return 90.0
    return 50.0 if zoom <= 13 else 0.0


def _ranges(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenation of arange(s, s + n) for each (s, n)."""
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    # The mixed list makes concatenate's dtype Any, so numpy types this sum as Any; it is int64.
    positions: NDArray[np.int64] = np.arange(int(lengths.sum())) + offsets
    return positions


class StreetPieces:
    """Drawable polylines: maximal runs of consecutive segments of one street, major first."""

    def __init__(self, data: CityData) -> None:
        """Chain the street-ordered segments into pieces and precompute their boxes."""
        u, v, street = data.seg_u, data.seg_v, data.seg_street
        breaks = np.ones(len(u), dtype=bool)
        breaks[1:] = (street[1:] != street[:-1]) | (u[1:] != v[:-1])
        starts = np.flatnonzero(breaks)
        ends = np.append(starts[1:], len(u))
        piece_nodes = [
            np.append(u[s:e], v[e - 1]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        speed = data.street_speed[street[starts]]
        order = np.lexsort((np.arange(len(starts)), -speed))  # major streets first, stable
        self.street = street[starts][order]
        self.speed = speed[order]
        lengths = np.array([len(piece_nodes[i]) for i in order], dtype=np.int64)
        self.ptr = np.concatenate([[0], np.cumsum(lengths)])
        self.nodes = np.concatenate([piece_nodes[i] for i in order]) if len(order) else np.zeros(0, np.int64)
        lon, lat = data.node_lon[self.nodes], data.node_lat[self.nodes]
        self.lon, self.lat = lon, lat
        self.box = np.column_stack(
            [
                np.minimum.reduceat(lon, self.ptr[:-1]),
                np.minimum.reduceat(lat, self.ptr[:-1]),
                np.maximum.reduceat(lon, self.ptr[:-1]),
                np.maximum.reduceat(lat, self.ptr[:-1]),
            ]
        )
        self.names = [str(s) for s in data.street_name]
        self.cos_lat = math.cos(math.radians(float(np.mean(data.node_lat))))

    def view(
        self, box: tuple[float, float, float, float], zoom: int, max_points: int
    ) -> list[dict[str, Any]]:
        """Simplified pieces intersecting `box`, major first, at most `max_points` points in all."""
        min_lon, min_lat, max_lon, max_lat = box
        b = self.box
        hit = (b[:, 0] <= max_lon) & (b[:, 2] >= min_lon) & (b[:, 1] <= max_lat) & (b[:, 3] >= min_lat)
        pieces = np.flatnonzero(hit & (self.speed >= min_speed_for_zoom(zoom)))
        if len(pieces) == 0 or max_points <= 0:
            return []
        tolerance = 1.5 * EQUATOR_M_PER_PX * self.cos_lat / 2 ** max(0, min(zoom, 22)) / M_PER_DEG_LAT
        kept, counts = self._simplify(pieces, tolerance)
        fits = np.flatnonzero(np.cumsum(counts) <= max_points)
        take = int(fits[-1]) + 1 if len(fits) else 0
        coords = np.round(np.column_stack([self.lon[kept], self.lat[kept]]), 6)[: int(counts[:take].sum())]
        chunks = np.split(coords, np.cumsum(counts[:take])[:-1]) if take else []
        return [
            {"name": self.names[self.street[p]], "speedKmh": float(self.speed[p]), "points": chunk.tolist()}
            for p, chunk in zip(pieces[:take].tolist(), chunks, strict=True)
        ]

    def _simplified_mask(
        self, idx: NDArray[np.int64], first: NDArray[np.bool_], tolerance: float
    ) -> NDArray[np.bool_]:
        """Radial-distance simplification: keep a vertex once the path moved past the next tolerance."""
        lon, lat = self.lon[idx], self.lat[idx]
        step = np.hypot(np.diff(lon, prepend=lon[0]) * self.cos_lat, np.diff(lat, prepend=lat[0]))
        step[first] = 0.0
        cum = np.cumsum(step)
        cum -= np.repeat(cum[first], np.diff(np.append(np.flatnonzero(first), len(idx))))
        bucket = np.floor(cum / tolerance)
        keep = first.copy()
        keep[1:] |= bucket[1:] != bucket[:-1]
        last = np.append(np.flatnonzero(first)[1:] - 1, len(idx) - 1)
        keep[last] = True
        return keep

    def _simplify(
        self, pieces: NDArray[np.int64], tolerance: float
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Kept node positions (into self.lon/lat) and kept-point count per piece."""
        lengths = self.ptr[pieces + 1] - self.ptr[pieces]
        idx = _ranges(self.ptr[pieces], lengths)
        first = np.zeros(len(idx), dtype=bool)
        first[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
        keep = self._simplified_mask(idx, first, tolerance)
        piece_of = np.repeat(np.arange(len(pieces)), lengths)
        return idx[keep], np.bincount(piece_of[keep], minlength=len(pieces))
