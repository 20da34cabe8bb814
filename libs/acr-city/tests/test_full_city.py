"""The full city: >= 1M addresses and >= 100k nodes; the cached copy equals a fresh build."""

from __future__ import annotations

import pytest

from acr_city import load_city
from acr_city.generator import SPECS, generate
from acr_city.network import build_city_data


@pytest.mark.slow
def test_full_city_counts_and_cache_roundtrip() -> None:
    city = load_city("full", seed=42)  # generated and cached on the first run
    assert city.address_count >= 1_000_000
    assert city.node_count >= 100_000
    assert len(city.data.street_name) >= 5_000
    assert build_city_data(generate(SPECS["full"], 42)).digest() == city.data.digest()
    hit = city.geocode(city.address("A123456").label)
    assert hit is not None and hit[0].address_id == "A123456" and hit[1] == 1.0
    route = city.route(*city.snap(60.12, 24.86), *city.snap(60.22, 25.02))
    assert route is not None and route.distance_m > 10_000
