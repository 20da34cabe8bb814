"""The ops dashboard in Chromium: the ride's car moves between fleet polls, the counters change, the
ride's event flow shows."""

from __future__ import annotations

import time
from typing import Any

import pytest
from browser_support import ApiRider, Console, new_page, screenshot

from acr_stack import Stack

pytestmark = pytest.mark.system


def counter(page: Any, name: str) -> float:
    return float(page.get_by_test_id(f"counter-{name}").get_attribute("data-value"))


def car_position(row: Any) -> tuple[str | None, str | None]:
    return row.get_attribute("data-car-lat"), row.get_attribute("data-car-lon")


def test_the_dashboard_shows_the_car_moving_and_the_counters(chromium: Any, browser_stack: Stack) -> None:
    base = browser_stack.config.url("bff")
    console = Console()
    page = new_page(chromium, {"width": 1440, "height": 900}, console)
    sent: list[Any] = []
    page.on("request", lambda request: sent.append(request) if "/ops/" in request.url else None)
    page.goto(f"{base}/dashboard")
    token_input = page.get_by_test_id("ops-token-input")
    token_input.wait_for()
    assert "dev-ops-token" not in page.content() and not token_input.get_attribute("placeholder")
    page.get_by_test_id("ops-token-submit").click()  # no token typed: nothing is sent
    page.wait_for_timeout(500)
    assert sent == [] and token_input.is_visible()
    token_input.fill(browser_stack.config.ops_token)
    page.get_by_test_id("ops-token-submit").click()
    page.locator("[data-testid=map-canvas][data-drawn=true]").wait_for(state="attached")
    page.get_by_test_id("counter-published").wait_for()
    assert sent and all(r.headers.get("x-ops-token") == browser_stack.config.ops_token for r in sent)
    assert page.get_by_test_id("legend-AVAILABLE").is_visible()
    published_before = counter(page, "published")

    rider = ApiRider.sign_up(base, "Linus")
    ride = rider.book(*rider.far_apart_places())
    row = page.locator(f"[data-testid=ride-row][data-ride-id={ride['rideId']}]")
    row.wait_for(timeout=15_000)
    page.wait_for_function(
        f"() => document.querySelector('[data-ride-id={ride['rideId']}]')?.dataset.carLat",
        timeout=15_000,
    )
    first = car_position(row)
    deadline = time.monotonic() + 20
    moved = first
    while moved == first and time.monotonic() < deadline:
        page.wait_for_timeout(300)
        if row.count() == 0:
            break
        moved = car_position(row)
    assert moved != first and moved[0], f"the car of {ride['rideId']} did not move: {first} -> {moved}"

    row.click()
    events = page.locator("[data-testid=event]")
    events.first.wait_for()
    assert events.first.get_attribute("data-type").endswith("RideRequested")
    page.wait_for_function(
        "before => Number(document.querySelector('[data-testid=counter-published]').dataset.value) > before",
        arg=published_before,
        timeout=10_000,
    )
    page.locator("[data-testid=map-canvas][data-loading=false]").wait_for(state="attached")
    screenshot(page, "dashboard.png")
    assert console.errors == []
