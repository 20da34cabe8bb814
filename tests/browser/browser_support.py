"""Browser-test plumbing: the embedded stacks, Debian's Chromium driven by Playwright, console-error capture.

The root conftest registers this module as a plugin (module names are unique: pytest runs in append
import mode and only the root conftest may register plugins).

Chromium: ``$ACR_CHROMIUM`` or ``/usr/bin/chromium`` (Debian's ``chromium``, which ``make test`` installs);
never a Playwright browser download. A machine without it fails these tests with the reason.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from acr_stack import Stack, StackConfig
from acr_stack.runner import start_on_free_ports

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = Path(os.environ.get("ACR_TEST_LOG_DIR", ROOT / ".run" / "test-logs"))
SCREENSHOTS = ROOT / "docs" / "screenshots"
MOBILE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BROWSER_SETTINGS = {
    "ACR_CITY": "small",
    "ACR_FLEET_SIZE": "60",
    "ACR_SIM_SPEED": "60",
    "ACR_BOARDING_S": "60",
    "ACR_STALL_WINDOW_S": "120",
    "ACR_DISPATCH_TIMEOUT_S": "20",
    "ACR_SQS_WAIT_S": "1",
    "ACR_LOG_LEVEL": "INFO",
}


def chromium_path() -> str | None:
    candidate = os.environ.get("ACR_CHROMIUM") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else shutil.which("chromium")


class StartingStack:
    """A stack starting in a background thread, so a slow one (the full city) overlaps other tests.

    The thread lives until ``stop``: the stack's processes die with the thread that spawned them
    (``PR_SET_PDEATHSIG``), so that thread also stops them."""

    def __init__(self, name: str, **overrides: str) -> None:
        self._config = lambda: StackConfig.free(env=BROWSER_SETTINGS | overrides, log_dir=LOG_DIR / name)
        self.stack: Stack | None = None
        self.error: BaseException | None = None
        self.started_s = 0.0
        self._up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stack-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            stack = self.stack = start_on_free_ports(self._config, timeout_s=240, cancel=self._stop)
        except BaseException as exc:  # reported by ready()
            self.error = exc
            return
        finally:
            self.started_s = time.monotonic() - t0
            self._up.set()
        self._stop.wait()
        stack.stop()

    def ready(self) -> Stack:
        self._up.wait()
        if self.error is not None or self.stack is None:
            raise RuntimeError(f"the stack did not start: {self.error}") from self.error
        return self.stack

    def stop(self) -> None:
        """Stop the stack, or cancel its start (which stops what is up)."""
        self._stop.set()
        self._thread.join(60)


BROWSER_TESTS = Path(__file__).resolve().parent
_RUNNING: list[StartingStack] = []


@pytest.fixture(scope="session")
def _stacks() -> Iterator[dict[str, StartingStack]]:
    """Every stack of the browser tests starts at once, in the background (start-up is mostly waiting);
    they stop after the last browser test (``pytest_runtest_teardown``) or at the end of the session."""
    stacks = {
        "small": StartingStack("browser-small"),
        # One car, quotes valid 2 s, slow enough that a booked car stays busy for a whole test.
        "one-car": StartingStack(
            "browser-one-car",
            ACR_FLEET_SIZE="1",
            ACR_QUOTE_TTL_S="2",
            ACR_SIM_SPEED="10",
            ACR_BOARDING_S="600",
        ),
        "full": StartingStack("browser-full", ACR_CITY="full"),
    }
    _RUNNING.extend(stacks.values())
    yield stacks
    _stop_browser_stacks()


def _stop_browser_stacks() -> None:
    while _RUNNING:
        _RUNNING.pop().stop()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the browser stacks once the browser tests are over: left running, three idle stacks would take
    a core from every test after them."""
    if item.path.parent == BROWSER_TESTS and (nextitem is None or nextitem.path.parent != BROWSER_TESTS):
        _stop_browser_stacks()


@pytest.fixture(scope="session")
def browser_stack(_stacks: dict[str, StartingStack]) -> Stack:
    """The small city, 60 cars, 60x simulated time."""
    return _stacks["small"].ready()


@pytest.fixture(scope="session")
def one_car_browser_stack(_stacks: dict[str, StartingStack]) -> Stack:
    return _stacks["one-car"].ready()


@pytest.fixture(scope="session")
def full_city_stack(_stacks: dict[str, StartingStack]) -> Stack:
    """The full city (about a million addresses, cached on disk after its first generation)."""
    return _stacks["full"].ready()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright import sync_api

    executable = chromium_path()
    if executable is None:
        pytest.fail("no Chromium: `make test` installs Debian's chromium (or set ACR_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class Console:
    """Every console error and uncaught page error of a page."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        page.on(
            "console",
            lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        return page


def new_page(browser: Any, viewport: dict[str, int], console: Console, mobile: bool = False) -> Any:
    extra: dict[str, Any] = {"is_mobile": True, "has_touch": True, "device_scale_factor": 2} if mobile else {}
    context = browser.new_context(viewport=viewport, **extra)
    context.set_default_timeout(20_000)
    return console.watch(context.new_page())


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    """Into the test logs; into the README's ``docs/screenshots`` only with ``ACR_UPDATE_SCREENSHOTS=1``
    (a run whose stack was slow must not replace them unseen)."""
    folder = SCREENSHOTS if os.environ.get("ACR_UPDATE_SCREENSHOTS") == "1" else LOG_DIR / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- API helpers (another rider, ops) ----------------------------------------------------------------
@dataclass
class ApiRider:
    base: str
    token: str

    @classmethod
    def sign_up(cls, base: str, name: str) -> ApiRider:
        response = httpx.post(f"{base}/api/v1/riders", json={"name": name}, timeout=10)
        assert response.status_code == 201, response.text
        return cls(base, response.json()["token"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def far_apart_places(self) -> tuple[dict[str, str], dict[str, str]]:
        """Two addresses near opposite corners of the city (a long trip)."""
        bounds = self.get("/api/v1/map", bbox="0,0,0,0", zoom=0)["bounds"]
        min_lon, min_lat, max_lon, max_lat = bounds
        found = [
            self.get(
                "/api/v1/addresses/reverse",
                lat=min_lat + (max_lat - min_lat) * f,
                lon=min_lon + (max_lon - min_lon) * f,
            )
            for f in (0.15, 0.85)
        ]
        return {"addressId": found[0]["addressId"]}, {"addressId": found[1]["addressId"]}

    def book(self, pickup: dict[str, str], dropoff: dict[str, str]) -> dict[str, Any]:
        quote = httpx.post(
            f"{self.base}/api/v1/quotes",
            json={"pickup": pickup, "dropoff": dropoff},
            headers=self.headers,
            timeout=10,
        )
        assert quote.status_code == 201, quote.text
        ride = httpx.post(
            f"{self.base}/api/v1/rides",
            json={"quoteId": quote.json()["quoteId"]},
            headers=self.headers | {"Idempotency-Key": uuid.uuid4().hex},
            timeout=10,
        )
        assert ride.status_code == 202, ride.text
        return ride.json()  # type: ignore[no-any-return]


def ops_get(stack: Stack, path: str) -> Any:
    """``GET`` of the stack's ops API with its ops token."""
    headers = {"X-Ops-Token": stack.config.ops_token}
    response = httpx.get(f"{stack.config.url('bff')}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()
