"""Driving the rider app like a person: sign up, type addresses, pick suggestions, confirm."""

from __future__ import annotations

import re
from typing import Any

from browser_support import ApiRider

HAPPY_PATH = ["REQUESTED", "CAR_ASSIGNED", "CAR_ARRIVED", "IN_PROGRESS", "COMPLETED", "PAID"]
QUOTE_TEXT = re.compile(r"^Your car arrives in \d+ min, you arrive in \d+ min — \d+\.\d{2} EUR\. Proceed\?$")


def street_of(label: str) -> str:
    """'12 Maplecombe Terrace, 00130' -> 'Maplecombe Terrace' (what a person would type)."""
    return re.sub(r"^\d+\s+", "", label.split(",")[0])


def far_apart_streets(base: str) -> tuple[str, str]:
    """Street names near opposite corners of the city, so the ride lasts long enough to watch."""
    rider = ApiRider.sign_up(base, "Scout")
    bounds = rider.get("/api/v1/map", bbox="0,0,0,0", zoom=0)["bounds"]
    min_lon, min_lat, max_lon, max_lat = bounds
    labels = [
        rider.get(
            "/api/v1/addresses/reverse",
            lat=min_lat + (max_lat - min_lat) * f,
            lon=min_lon + (max_lon - min_lon) * f,
        )["label"]
        for f in (0.3, 0.7)
    ]
    return street_of(labels[0]), street_of(labels[1])


def sign_up(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/")
    page.get_by_test_id("name-input").fill(name)
    page.get_by_test_id("signup-button").click()
    page.get_by_test_id("book").wait_for(state="visible")
    page.locator("[data-testid=map-canvas][data-drawn=true]").wait_for()


def pick_by_keyboard(page: Any, which: str, text: str) -> str:
    """Type, wait for the listbox, ArrowDown to the second suggestion (if any), Enter; returns the label."""
    field = page.get_by_test_id(f"{which}-field")
    box = page.get_by_test_id(f"{which}-input")
    box.click()
    box.press_sequentially(text, delay=30)
    options = field.locator("[role=option]")
    options.first.wait_for()
    assert box.get_attribute("aria-expanded") == "true"
    if options.count() > 1:
        box.press("ArrowDown")
    wanted = field.locator("[role=option][aria-selected=true]").inner_text()
    box.press("Enter")
    assert box.input_value() == wanted
    assert box.get_attribute("aria-expanded") == "false"
    return wanted


def pick_by_click(page: Any, which: str, text: str) -> str:
    field = page.get_by_test_id(f"{which}-field")
    box = page.get_by_test_id(f"{which}-input")
    box.click()
    box.press_sequentially(text, delay=30)
    option = field.locator("[role=option]").first
    option.wait_for()
    wanted = option.inner_text()
    option.click()
    assert box.input_value() == wanted
    return wanted


def quote(page: Any, base: str) -> str:
    """Pick two far-apart places and return the quote text shown."""
    pickup, dropoff = far_apart_streets(base)
    pick_by_keyboard(page, "pickup", pickup)
    pick_by_click(page, "dropoff", dropoff)
    text = page.get_by_test_id("quote-text")
    text.wait_for(state="visible")
    return str(text.inner_text())


def timeline(page: Any) -> list[str]:
    steps = page.locator("[data-testid=timeline-step]")
    return [steps.nth(i).get_attribute("data-status") for i in range(steps.count())]


def versions(page: Any) -> list[int]:
    return list(page.evaluate("window.__acr.ride.versions"))


def wait_status(page: Any, status: str, timeout_ms: int = 60_000) -> None:
    page.locator(f"[data-testid=ride][data-status={status}]").wait_for(state="attached", timeout=timeout_ms)
