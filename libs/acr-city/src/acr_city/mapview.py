"""Street polylines for map rendering: pieces, zoom filtering, simplification, payload cap."""

from __future__ import annotations

import math

import numpy as np

from .data import CityData

EQUATOR_M_PER_PX = 156_543.03


def min_speed_for_zoom(zoom: int) -> float:
    """At low zoom only major streets are drawn."""
    if zoom <= 11:
        return 90.0
    return 50.0 if zoom <= 13 else 0.0


class StreetPieces:
    """Drawable polylines: maximal runs of consecutive segments of one street."""

    def __init__(self, data: CityData) -> None:
        """Chain the street-ordered segments into pieces and precompute their boxes."""
        u, v, street = data.seg_u, data.seg_v, data.seg_street
        breaks = np.ones(len(u), dtype=bool)
        breaks[1:] = (street[1:] != street[:-1]) | (u[1:] != v[:-1])
        starts = np.flatnonzero(breaks)
        ends = np.append(starts[1:], len(u))
        self.street = street[starts]
        self.node_ptr = np.concatenate([[0], np.cumsum(ends - starts + 1)])
        nodes = np.empty(int(self.node_ptr[-1]), dtype=np.int64)
        piece_of_seg = np.repeat(np.arange(len(starts)), ends - starts)
        slot = self.node_ptr[piece_of_seg] + (np.arange(len(u)) - starts[piece_of_seg])
        nodes[slot] = u
        nodes[self.node_ptr[1:] - 1] = v[ends - 1]
        self.nodes = nodes
        self.lat = data.node_lat
        self.lon = data.node_lon
        piece_of_node = np.repeat(np.arange(len(starts)), ends - starts + 1)
        self.box = np.full((len(starts), 4), np.nan)
        for col, values, fn in ((0, self.lon, np.minimum), (1, self.lat, np.minimum)):
            self.box[:, col] = np.inf
            fn.at(self.box[:, col], piece_of_node, values[nodes])
        for col, values, fn in ((2, self.lon, np.maximum), (3, self.lat, np.maximum)):
            self.box[:, col] = -np.inf
            fn.at(self.box[:, col], piece_of_node, values[nodes])
        self.speed = data.street_speed[self.street]
        self.names = [str(s) for s in data.street_name]
        self.order = np.lexsort((np.arange(len(starts)), -self.speed))  # major streets first

    def view(self, box: tuple[float, float, float, float], zoom: int, max_points: int) -> list[dict]:
        """Simplified pieces intersecting `box`, major first, at most `max_points` points."""
        min_lon, min_lat, max_lon, max_lat = box
        b = self.box[self.order]
        hit = (
            (b[:, 0] <= max_lon) & (b[:, 2] >= min_lon) & (b[:, 1] <= max_lat) & (b[:, 3] >= min_lat)
            & (self.speed[self.order] >= min_speed_for_zoom(zoom))
        )
        tolerance_deg = 1.5 * EQUATOR_M_PER_PX / (2 ** max(0, min(zoom, 22))) / 111_320.0
        streets: list[dict] = []
        budget = max_points
        for piece in self.order[hit]:
            points = self._simplified(int(piece), tolerance_deg)
            if len(points) > budget:
                break
            budget -= len(points)
            streets.append(
                {"name": self.names[self.street[piece]], "speedKmh": float(self.speed[piece]), "points": points}
            )
        return streets

    def _simplified(self, piece: int, tolerance_deg: float) -> list[list[float]]:
        """Radial-distance simplification: keep a vertex once it moved > tolerance."""
        nodes = self.nodes[self.node_ptr[piece] : self.node_ptr[piece + 1]]
        lon, lat = self.lon[nodes], self.lat[nodes]
        if len(nodes) > 2:
            step = np.hypot(np.diff(lon) * math.cos(math.radians(float(lat[0]))), np.diff(lat))
            bucket = np.floor(np.concatenate([[0.0], np.cumsum(step)]) / tolerance_deg)
            keep = np.flatnonzero(np.diff(bucket, prepend=-1.0) > 0)
            if keep[-1] != len(nodes) - 1:
                keep = np.append(keep, len(nodes) - 1)
            lon, lat = lon[keep], lat[keep]
        return np.column_stack([np.round(lon, 6), np.round(lat, 6)]).tolist()

