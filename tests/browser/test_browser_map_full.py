"""The map of the full city (about a million addresses) draws fast, with bounded payloads, and refetches
streets for the view on zoom and pan."""

from __future__ import annotations

import time
from typing import Any

import pytest
from browser_support import DESKTOP, ApiRider, Console, new_page

from acr.stack import Stack

pytestmark = pytest.mark.system
pytest_plugins = ["browser_support"]  # the session stacks and Chromium

MAX_MAP_BYTES = 600_000  # the city caps a view at 20k points


def test_the_full_city_map_draws_within_two_seconds(chromium: Any, full_city_stack: Stack) -> None:
    base = full_city_stack.config.url("bff")
    token = ApiRider.sign_up(base, "Ada").token
    console = Console()
    page = new_page(chromium, DESKTOP, console)
    page.context.add_init_script(f"localStorage.setItem('acr.token', {token!r})")
    sizes: list[tuple[str, int]] = []

    def on_finished(request: Any) -> None:
        if "/api/v1/map" in request.url:
            sizes.append((request.url, request.sizes()["responseBodySize"]))

    page.on("requestfinished", on_finished)

    t0 = time.monotonic()
    page.goto(f"{base}/")
    page.locator("[data-testid=map-canvas][data-drawn=true]").wait_for(state="attached", timeout=10_000)
    elapsed = time.monotonic() - t0
    streets = int(page.get_by_test_id("map-canvas").get_attribute("data-streets"))
    assert streets > 0
    assert elapsed < 2.0, f"the map took {elapsed:.2f} s"

    fetched = len(sizes)
    page.get_by_test_id("map-zoom-in").click()
    page.get_by_test_id("map-zoom-in").click()
    box = page.get_by_test_id("map-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 300, box["y"] + box["height"] / 2 - 200, steps=8)
    page.mouse.up()
    page.locator("[data-testid=map-canvas][data-loading=false]").wait_for(state="attached")
    page.wait_for_timeout(300)
    assert len(sizes) > fetched, "zoom and pan fetched no streets for the new view"
    assert all(size < MAX_MAP_BYTES for _, size in sizes), sizes
    assert console.errors == []
