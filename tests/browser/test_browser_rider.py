"""The rider app in Chromium against the embedded stack: the whole journey by clicks and typing, and a
dropped websocket mid-ride that loses no step."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_support import DESKTOP, MOBILE, Console, new_page, screenshot
from rider_ui import HAPPY_PATH, QUOTE_TEXT, quote, sign_up, timeline, versions, wait_status

from acr_stack import Stack

pytestmark = pytest.mark.system


def test_the_whole_journey_on_a_phone_without_console_errors(chromium: Any, browser_stack: Stack) -> None:
    base = browser_stack.config.url("bff")
    console = Console()
    page = new_page(chromium, MOBILE, console, mobile=True)

    sign_up(page, base, "Ada")
    account = page.get_by_test_id("account")
    account.wait_for(state="visible")
    assert "Ada" in account.inner_text() and page.get_by_test_id("tier").inner_text() == "BRONZE"

    text = quote(page, base)
    assert QUOTE_TEXT.match(text), text
    page.get_by_test_id("confirm-button").click()

    ride = page.get_by_test_id("ride")
    ride.wait_for(state="visible")
    page.wait_for_function(
        "() => window.__acr.ride?.car != null || /PAID|COMPLETED/.test(window.__acr.ride?.ride.status)",
        timeout=20_000,
    )
    eta = page.get_by_test_id("eta").inner_text()
    if page.evaluate("window.__acr.ride.car != null"):
        assert re.match(r"^(Your car arrives in|You arrive in) \d+:\d\d$", eta) or "waiting" in eta, eta
    page.locator("[data-testid=map-canvas][data-loading=false]").wait_for(state="attached")
    screenshot(page, "rider-app-mobile-ride.png")

    wait_status(page, "PAID")
    assert timeline(page) == HAPPY_PATH
    receipt = page.get_by_test_id("receipt")
    receipt.wait_for(state="visible")
    assert re.match(r"^\d+\.\d{2} EUR$", page.get_by_test_id("receipt-fare").inner_text())
    assert re.match(r"^\d+\.\d km$", page.get_by_test_id("receipt-distance").inner_text())
    assert page.get_by_test_id("receipt-payment").inner_text().startswith("Paid")
    points = page.get_by_test_id("receipt-points")
    page.wait_for_function(
        "() => /^\\+\\d+$/.test(document.querySelector('[data-testid=receipt-points]').textContent)"
    )
    earned = int(points.inner_text().lstrip("+"))
    assert earned >= 0
    assert page.get_by_test_id("cancel-button").is_hidden()

    page.get_by_test_id("new-ride-button").click()
    past = page.locator("[data-testid=past-ride]")
    past.first.wait_for()
    assert past.first.get_attribute("data-status") == "PAID"
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=points]').textContent === '{earned} pts'", timeout=10_000
    )
    assert console.errors == []


def test_a_dropped_socket_mid_ride_loses_no_step(chromium: Any, browser_stack: Stack) -> None:
    base = browser_stack.config.url("bff")
    console = Console()
    page = new_page(chromium, DESKTOP, console)
    sign_up(page, base, "Grace")
    quote(page, base)
    page.get_by_test_id("confirm-button").click()
    page.get_by_test_id("ride").wait_for(state="visible")
    page.wait_for_function("() => window.__acr.socket.opens === 1")

    page.context.set_offline(True)
    page.wait_for_function("() => window.__acr.socket.ws === null")  # the app saw the socket go
    page.wait_for_timeout(2_000)  # the ride moves on meanwhile
    shown_offline = versions(page)
    page.context.set_offline(False)
    page.wait_for_function("() => window.__acr.socket.opens >= 2", timeout=20_000)
    page.get_by_test_id("alert").wait_for(state="hidden")  # no "cannot reach the server" once it is back
    page.wait_for_function("() => window.__acr.ride.car != null || window.__acr.ride.ride.status === 'PAID'")
    # streets that could not be fetched offline are fetched again
    page.locator("[data-testid=map-canvas][data-loading=false]:not([data-stale=true])").wait_for(
        state="attached"
    )
    screenshot(page, "rider-app.png")

    wait_status(page, "PAID")
    page.wait_for_function("() => window.__acr.ride.settled", timeout=20_000)
    seen = versions(page)
    assert seen == list(range(1, seen[-1] + 1)), f"a version was lost or repeated: {seen}"
    assert len(seen) > len(shown_offline), "the ride never moved on after the reconnect"
    assert timeline(page) == HAPPY_PATH
    # Offline, Chromium logs the failed reconnection attempts; nothing else may be logged.
    unexpected = [e for e in console.errors if "WebSocket" not in e and "ERR_INTERNET_DISCONNECTED" not in e]
    assert unexpected == []
