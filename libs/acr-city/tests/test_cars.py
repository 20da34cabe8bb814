"""CarIndex against brute force."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acr_city import Bounds, CarIndex, OutsideServiceArea
from acr_city.geo import Projection

BOUNDS = Bounds(24.80, 60.10, 25.10, 60.25)
LAT = st.floats(min_value=BOUNDS.min_lat, max_value=BOUNDS.max_lat)
LON = st.floats(min_value=BOUNDS.min_lon, max_value=BOUNDS.max_lon)
CAR = st.tuples(st.integers(0, 60), LAT, LON, st.booleans())


def brute(index_state: dict[str, tuple[float, float, bool]], lat: float, lon: float, k: int) -> list[float]:
    proj = Projection((BOUNDS.min_lat + BOUNDS.max_lat) / 2, (BOUNDS.min_lon + BOUNDS.max_lon) / 2)
    qx, qy = proj.point_xy(lat, lon)
    dists = []
    for clat, clon, available in index_state.values():
        if available:
            x, y = proj.point_xy(clat, clon)
            dists.append(math.hypot(x - qx, y - qy))
    return sorted(dists)[:k]


@settings(max_examples=200, deadline=None)
@given(st.lists(CAR, max_size=200), st.lists(st.integers(0, 60), max_size=20), LAT, LON, st.integers(1, 15))
def test_nearest_matches_brute_force(
    ops: list[tuple[int, float, float, bool]], removals: list[int], lat: float, lon: float, k: int
) -> None:
    index = CarIndex(BOUNDS)
    state: dict[str, tuple[float, float, bool]] = {}
    for car, clat, clon, available in ops:
        index.upsert(f"c{car}", clat, clon, available)
        state[f"c{car}"] = (clat, clon, available)
    for car in removals:
        index.remove(f"c{car}")
        state.pop(f"c{car}", None)
    got = index.nearest(lat, lon, k)
    expected = brute(state, lat, lon, k)
    assert [d for _, d in got] == pytest.approx(expected, abs=1e-6)
    assert all(state[cid][2] for cid, _ in got)
    assert len(index) == len(state)
    assert index.available_count == sum(1 for s in state.values() if s[2])


def test_resizing_keeps_answers_exact() -> None:
    index = CarIndex(BOUNDS)
    state = {}
    for i in range(3000):
        lat = BOUNDS.min_lat + (i * 0.6180339) % 1 * (BOUNDS.max_lat - BOUNDS.min_lat)
        lon = BOUNDS.min_lon + (i * 0.4142135) % 1 * (BOUNDS.max_lon - BOUNDS.min_lon)
        index.upsert(str(i), lat, lon, i % 3 != 0)
        state[str(i)] = (lat, lon, i % 3 != 0)
    for i in range(0, 3000, 2):
        index.remove(str(i))
        del state[str(i)]
    got = index.nearest(60.17, 24.94, 25)
    assert [d for _, d in got] == pytest.approx(brute(state, 60.17, 24.94, 25), abs=1e-6)


def test_invalid_positions_rejected() -> None:
    index = CarIndex(BOUNDS)
    with pytest.raises(OutsideServiceArea):
        index.upsert("x", math.nan, 24.9, True)
    with pytest.raises(OutsideServiceArea):
        index.nearest(60.1, math.inf)
    assert index.nearest(60.1, 24.9) == []
