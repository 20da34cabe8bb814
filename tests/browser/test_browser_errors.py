"""The rider app shows human messages for API errors: an expired quote, no car in reach (a one-car city
whose car another rider took), and an unknown token (back to sign-up)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from browser_support import MOBILE, ApiRider, Console, new_page, ops_get
from rider_ui import quote, sign_up

from acr_stack import Stack

pytestmark = pytest.mark.system

MESSAGES = {
    "quote_expired": "This price has expired. Please get a new quote.",
    "no_car_available": "Sorry, no car can reach your pickup right now. Please try again in a minute.",
    "unauthorized": "Your session has expired. Please sign up again.",
}


def alert_of(page: Any, code: str) -> str:
    alert = page.get_by_test_id("alert")
    page.locator(f"[data-testid=alert][data-code={code}]").wait_for(state="visible")
    return str(alert.inner_text())


def wait_car_taken(stack: Stack, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cars = ops_get(stack, "/ops/fleet")["cars"]
        if cars and all(car["state"] != "AVAILABLE" for car in cars):  # the view lists the car once seeded
            return
        time.sleep(0.3)
    raise AssertionError("the only car never left AVAILABLE")


def test_expired_quote_and_no_car_show_human_messages(chromium: Any, one_car_browser_stack: Stack) -> None:
    base = one_car_browser_stack.config.url("bff")
    console = Console()
    page = new_page(chromium, MOBILE, console, mobile=True)
    sign_up(page, base, "Eve")

    quote(page, base)
    page.wait_for_timeout(3_000)  # the quote lives 2 s
    page.get_by_test_id("confirm-button").click()
    assert alert_of(page, "quote_expired") == MESSAGES["quote_expired"]
    assert page.get_by_test_id("alert").get_attribute("role") == "alert"
    assert page.get_by_test_id("quote").is_hidden()

    # Another rider takes the only car; the next price finds no car in reach.
    other = ApiRider.sign_up(base, "Mallory")
    other.book(*other.far_apart_places())
    wait_car_taken(one_car_browser_stack)
    page.get_by_test_id("quote-button").click()
    assert alert_of(page, "no_car_available") == MESSAGES["no_car_available"]
    assert page.get_by_test_id("quote").is_hidden()

    # The browser logs each 4xx response as a console error; those are the expected ones, nothing else.
    unexpected = [e for e in console.errors if "status of 409" not in e]
    assert unexpected == []


def test_an_unknown_token_goes_back_to_sign_up(chromium: Any, one_car_browser_stack: Stack) -> None:
    base = one_car_browser_stack.config.url("bff")
    console = Console()
    page = new_page(chromium, MOBILE, console, mobile=True)
    page.goto(f"{base}/")
    page.evaluate("localStorage.setItem('acr.token', 'forged.token.value')")
    page.reload()
    page.get_by_test_id("signup-form").wait_for(state="visible")
    assert alert_of(page, "unauthorized") == MESSAGES["unauthorized"]
    assert page.evaluate("localStorage.getItem('acr.token')") is None
    unexpected = [e for e in console.errors if "status of 401" not in e]
    assert unexpected == []
