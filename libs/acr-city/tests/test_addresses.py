"""Address search on the small city: round trips, typos, prefixes, POIs and bad input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acr_city import InvalidQuery, OutsideServiceArea, load_city
from acr_city.text import normalize, within_one_edit

CITY = load_city("small", seed=42)
ROWS = st.integers(min_value=0, max_value=CITY.address_count - 1)
STREETS = st.integers(min_value=0, max_value=len(CITY.data.street_name) - 1)
LETTERS = st.sampled_from("abcdefghijklmnopqrstuvwxyz")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(ROWS)
def test_reverse_of_geocode_is_the_address(row: int) -> None:
    address = CITY.address(f"A{row}")
    assert address is not None
    found = CITY.geocode(address.label)
    assert found is not None and found[0] == address and found[1] == 1.0
    back, metres = CITY.reverse(found[0].lat, found[0].lon)
    assert back == address and metres < 0.01


def _typo(name: str, op: int, pos: int, letter: str) -> str:
    pos %= len(name)
    if op == 0:
        return name[:pos] + letter + name[pos + 1 :]
    if op == 1:
        return name[:pos] + name[pos + 1 :]
    if op == 2:
        return name[:pos] + letter + name[pos:]
    pos = min(pos, len(name) - 2)
    return name[:pos] + name[pos + 1] + name[pos] + name[pos + 2 :]


@FAST
@given(STREETS, st.integers(0, 3), st.integers(0, 60), LETTERS, st.integers(1, 9))
def test_one_typo_still_finds_the_street(street: int, op: int, pos: int, letter: str, number: int) -> None:
    name = normalize(str(CITY.data.street_name[street]))
    typo = _typo(name, op, pos, letter)
    assume(typo != name and normalize(typo) == typo.strip() and typo.strip())
    suggestions = CITY.autocomplete(f"{number} {typo}", limit=5)
    assert name in [normalize(s.street) for s in suggestions]
    rivals = [
        n
        for n in CITY._book.index._norm
        if n != name and (n.startswith(typo) or within_one_edit(typo, n) <= 1)
    ]
    if not rivals:
        found = CITY.geocode(f"{number} {typo}")
        assert found is not None and normalize(found[0].street) == name


@FAST
@given(STREETS, st.integers(3, 8))
def test_prefix_autocomplete_contains_street(street: int, cut: int) -> None:
    name = str(CITY.data.street_name[street])
    words = normalize(name)
    prefix = words[:cut]
    assume(len(CITY._book.index.prefix(prefix, 50)) <= 5)
    assert name in [s.street for s in CITY.autocomplete(prefix, limit=5)]


def test_house_number_and_postcode_parsing() -> None:
    address = CITY.address("A1001")
    assert address is not None
    for query in (
        f"{address.house_number} {address.street}",
        f"{address.street} {address.house_number}, {address.postcode}",
        f"  {address.house_number}   {address.street.upper()}  ",
    ):
        found = CITY.geocode(query)
        assert found is not None and found[0] == address, query


def test_odd_and_even_numbers_on_opposite_sides() -> None:
    data = CITY.data
    lo, hi = int(data.street_addr_ptr[5]), int(data.street_addr_ptr[6])
    numbers = data.addr_number[lo:hi]
    assert (numbers[::2] % 2 == 1).all() and (numbers[1::2] % 2 == 0).all()
    first, second = CITY.address(f"A{lo}"), CITY.address(f"A{lo + 1}")
    assert first is not None and second is not None
    assert 10 < CITY.reverse(first.lat, first.lon)[0].house_number + 10  # both resolvable
    from acr_city.geo import haversine_m

    assert 12 < haversine_m(first.lat, first.lon, second.lat, second.lon) < 20  # 2 x 8 m setback


def test_pois_are_geocodable_by_name() -> None:
    assert len(CITY.pois) >= 10
    for poi in CITY.pois:
        found = CITY.geocode(poi.name)
        assert found is not None and found[0] == poi.address and found[1] == 1.0
        assert poi.address in CITY.autocomplete(poi.name[:6], limit=10)
    assert CITY.geocode("central statoin") is not None
    assert CITY.autocomplete("station", limit=10)


def test_address_lookup_by_id() -> None:
    assert CITY.address("A0") is not None
    assert CITY.address("P0") == CITY.pois[0].address
    assert CITY.address("A999999999") is None
    assert CITY.address("nonsense") is None
    assert CITY.address("") is None


def test_no_match_returns_none_or_empty() -> None:
    assert CITY.geocode("zzzzqqqq xxxx") is None
    assert CITY.autocomplete("zzzzqqqq xxxx") == []
    assert CITY.geocode("12") is None


@pytest.mark.parametrize("query", ["", "   ", "a" * 10_000, "Harbour\x00Street", "Main\nStreet", "\x1b[31m"])
def test_bad_queries_raise_invalid_query(query: str) -> None:
    with pytest.raises(InvalidQuery):
        CITY.geocode(query)
    with pytest.raises(InvalidQuery):
        CITY.autocomplete(query)


@pytest.mark.parametrize(
    "lat, lon",
    [(float("nan"), 24.94), (60.17, float("inf")), (0.0, 0.0), (61.5, 24.94), (-float("inf"), 0.0)],
)
def test_bad_coordinates_raise_outside_service_area(lat: float, lon: float) -> None:
    inside = CITY.address("A0")
    assert inside is not None
    with pytest.raises(OutsideServiceArea):
        CITY.reverse(lat, lon)
    with pytest.raises(OutsideServiceArea):
        CITY.route(lat, lon, inside.lat, inside.lon)
    with pytest.raises(OutsideServiceArea):
        CITY.travel_time(inside.lat, inside.lon, lat, lon)
    with pytest.raises(OutsideServiceArea):
        CITY.etas_to(lat, lon, [("c1", inside.lat, inside.lon)], 900)
    with pytest.raises(OutsideServiceArea):
        CITY.snap(lat, lon)


def test_errors_are_value_errors() -> None:
    assert issubclass(InvalidQuery, ValueError) and issubclass(OutsideServiceArea, ValueError)
