"""Map payloads: bounded, zoom-filtered, inside the view."""

from __future__ import annotations

import pytest

from acr_city import InvalidQuery, OutsideServiceArea, load_city

CITY = load_city("small", seed=42)


def test_low_zoom_only_major_streets() -> None:
    view = CITY.map_view(*CITY.bounds.as_list(), zoom=11)
    assert view["bounds"] == CITY.bounds.as_list()
    assert view["streets"] and all(s["speedKmh"] >= 90 for s in view["streets"])


def test_high_zoom_has_local_streets_and_respects_budget() -> None:
    view = CITY.map_view(*CITY.bounds.as_list(), zoom=16, max_points=3000)
    points = sum(len(s["points"]) for s in view["streets"])
    assert 0 < points <= 3000
    assert {s["speedKmh"] for s in view["streets"]} >= {50.0, 90.0}
    full = CITY.map_view(*CITY.bounds.as_list(), zoom=16, max_points=10**7)
    assert 25.0 in {s["speedKmh"] for s in full["streets"]}


def test_streets_intersect_view() -> None:
    b = CITY.bounds
    box = (b.min_lon, b.min_lat, (b.min_lon + b.max_lon) / 2, (b.min_lat + b.max_lat) / 2)
    view = CITY.map_view(*box, zoom=15)
    assert view["streets"]
    for street in view["streets"]:
        lons = [p[0] for p in street["points"]]
        lats = [p[1] for p in street["points"]]
        assert min(lons) <= box[2] and max(lons) >= box[0] and min(lats) <= box[3] and max(lats) >= box[1]
        assert street["name"] and len(street["points"]) >= 2


def test_bad_view_rejected() -> None:
    with pytest.raises(OutsideServiceArea):
        CITY.map_view(float("nan"), 0, 1, 1, zoom=12)
    with pytest.raises(InvalidQuery):
        CITY.map_view(25.0, 60.2, 24.9, 60.1, zoom=12)
