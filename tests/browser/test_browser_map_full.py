"""The map of the full city (about a million addresses) draws fast, with bounded payloads, and refetches
streets for the view on zoom and pan."""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import DESKTOP, ApiRider, Console, new_page

from acr_stack import Stack

pytestmark = pytest.mark.system

MAX_MAP_BYTES = 600_000  # the city caps a view at 20k points
BUDGET_S = 2.0
TRIES = 3  # the best of a few fresh page loads: the test machine may be busy with other work
RESOURCES = (
    "performance.getEntriesByType('resource')"
    ".map(e => `${e.name.split('/').pop().slice(0, 40)}"
    " ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`)"
)


def load(chromium: Any, base: str, token: str, console: Console) -> tuple[Any, float, list[tuple[str, int]]]:
    """A first visit of a signed-in rider (fresh browser context); returns the page, the seconds from the
    navigation start to the first streets drawn (the page's own clock) and the map payload sizes."""
    page = new_page(chromium, DESKTOP, console)
    page.context.add_init_script(f"localStorage.setItem('acr.token', {token!r})")
    sizes: list[tuple[str, int]] = []

    def on_finished(request: Any) -> None:
        if "/api/v1/map" in request.url:
            sizes.append((request.url, request.sizes()["responseBodySize"]))

    page.on("requestfinished", on_finished)
    page.goto(f"{base}/")
    canvas = page.get_by_test_id("map-canvas")
    page.locator("[data-testid=map-canvas][data-drawn=true]").wait_for(state="attached", timeout=10_000)
    assert int(canvas.get_attribute("data-streets")) > 0
    return page, int(canvas.get_attribute("data-first-drawn-ms")) / 1000, sizes


def test_the_full_city_map_draws_within_two_seconds(chromium: Any, full_city_stack: Stack) -> None:
    base = full_city_stack.config.url("bff")
    rider = ApiRider.sign_up(base, "Ada")
    rider.get("/api/v1/map", bbox="0,0,0,0", zoom=0)  # the services' first request is not the page's
    console = Console()
    tries = []
    for _ in range(TRIES):
        page, drawn_s, sizes = load(chromium, base, rider.token, console)
        tries.append((drawn_s, page.evaluate(RESOURCES)))
        if drawn_s < BUDGET_S:
            break
        page.context.close()
    best = min(t[0] for t in tries)
    assert best < BUDGET_S, f"the map was never drawn within {BUDGET_S} s: {tries}"

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
