"""Routing and dispatch ETAs on the small city, checked against scipy full Dijkstra and geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from acr_city import InvalidQuery, load_city
from acr_city.geo import haversine_m
from acr_city.routing import decode

CITY = load_city("small", seed=42)
TOP_SPEED_MS = 90 / 3.6
B = CITY.bounds
LAT = st.floats(min_value=B.min_lat, max_value=B.max_lat)
LON = st.floats(min_value=B.min_lon, max_value=B.max_lon)
POINT = st.tuples(LAT, LON)
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(POINT, POINT)
def test_route_distance_at_least_haversine_and_optimal(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    route = CITY.route(*a, *b)
    assert route is not None
    assert route.distance_m + 1e-6 >= haversine_m(*a, *b)
    assert route.path[0] == a and route.path[-1] == b
    assert route.duration_s >= haversine_m(*a, *b) / TOP_SPEED_MS - 1e-6
    router = CITY._router
    source, target = router.snap(*a)[0], router.snap(*b)[0]
    reference = dijkstra(router.forward, indices=source)[target]
    meeting, _, _ = router.meet(source, target, haversine_m(*a, *b))
    assert meeting.weight == reference
    assert CITY.travel_time(*a, *b) == (route.duration_s, route.distance_m)


def test_route_path_follows_edges() -> None:
    a, b = CITY.address("A10"), CITY.address("A40000")
    assert a is not None and b is not None
    route = CITY.route(a.lat, a.lon, b.lat, b.lon)
    assert route is not None and len(route.path) > 3
    walked = sum(haversine_m(*p, *q) for p, q in zip(route.path, route.path[1:], strict=False))
    assert walked == pytest.approx(route.distance_m, rel=1e-3, abs=1.0)


def test_same_point_route_is_trivial() -> None:
    a = CITY.address("A5")
    assert a is not None
    route = CITY.route(a.lat, a.lon, a.lat, a.lon)
    assert route is not None and route.distance_m < 100 and route.duration_s < 60


@FAST
@given(POINT, st.lists(POINT, min_size=1, max_size=30), st.floats(min_value=30, max_value=1200))
def test_etas_bounded_sorted_and_consistent(
    pickup: tuple[float, float], cars: list[tuple[float, float]], max_eta: float
) -> None:
    fleet = [(f"car{i}", lat, lon) for i, (lat, lon) in enumerate(cars)]
    etas = CITY.etas_to(*pickup, fleet, max_eta)
    assert [e.eta_s for e in etas] == sorted(e.eta_s for e in etas)
    positions = {cid: (lat, lon) for cid, lat, lon in fleet}
    reached = {e.car_id for e in etas}
    for e in etas:
        straight = haversine_m(*positions[e.car_id], *pickup)
        assert e.eta_s <= max_eta
        assert e.eta_s + 1e-6 >= straight / TOP_SPEED_MS
        assert e.distance_m + 0.5 >= straight
        duration, distance = CITY.travel_time(*positions[e.car_id], *pickup)  # type: ignore[misc]
        assert e.eta_s == pytest.approx(duration, abs=0.11)
        assert e.distance_m == pytest.approx(distance, abs=0.11)
    for cid, (lat, lon) in positions.items():
        if cid not in reached:
            tt = CITY.travel_time(lat, lon, *pickup)
            assert tt is None or tt[0] > max_eta - 0.11


def test_etas_reverse_search_matches_full_dijkstra() -> None:
    router = CITY._router
    target = 17
    costs = router.reverse_costs(target, 600.0)
    full = dijkstra(router.forward.T, indices=target)  # reference: unbounded search
    seconds, _ = decode(np.where(np.isfinite(full), full, 0))
    inside = np.isfinite(costs)
    assert np.array_equal(costs[inside], full[inside])
    assert (seconds[~inside] > 600.0).all()


def test_etas_input_validation() -> None:
    a = CITY.address("A0")
    assert a is not None
    assert CITY.etas_to(a.lat, a.lon, [], 900) == []
    assert CITY.etas_to(a.lat, a.lon, [("nan", math.nan, 0.0), ("far", 0.0, 0.0)], 900) == []
    with pytest.raises(InvalidQuery):
        CITY.etas_to(a.lat, a.lon, [("c", a.lat, a.lon)], -5)
    with pytest.raises(InvalidQuery):
        CITY.etas_to(a.lat, a.lon, [("c", a.lat, a.lon)], math.nan)


def test_snap_returns_a_graph_node() -> None:
    lat, lon = CITY.snap(60.17, 24.94)
    nodes = set(zip(CITY.data.node_lat.tolist(), CITY.data.node_lon.tolist(), strict=True))
    assert (lat, lon) in nodes


def test_graph_is_one_strongly_connected_component() -> None:
    from scipy.sparse.csgraph import connected_components

    count, _ = connected_components(CITY._router.forward, directed=True, connection="strong")
    assert count == 1
    speeds = set(np.unique(CITY.data.street_speed).tolist())
    assert speeds == {25.0, 50.0, 90.0}
    assert (CITY.data.street_congestion > 0).all() and (CITY.data.street_congestion <= 1).all()
    expected = CITY.data.edge_len / (
        CITY.data.street_speed[CITY.data.edge_street]
        / 3.6
        * CITY.data.street_congestion[CITY.data.edge_street]
    )
    assert np.allclose(CITY.data.edge_time, expected)
