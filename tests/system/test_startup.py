"""Start-up on a fresh machine: the stack comes up on an empty city cache, and when it cannot, it stops
at once and says which process failed and why."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from rider_client import LOG_DIR

from acr_city.cache import cache_path
from acr_city.data import CityData
from acr_stack import Stack, StackConfig
from acr_stack.runner import StartupFailed, StartupTimedOut, probe, wait_until

pytestmark = pytest.mark.system


def _log(stack: Stack, name: str) -> str:
    assert stack.config.log_dir is not None
    return (stack.config.log_dir / f"{name}.log").read_text(errors="replace")


def test_the_whole_stack_starts_on_an_empty_city_cache(tmp_path: Path) -> None:
    """As ``make run`` on a fresh clone: the full city, no cache yet; built once, by the runner."""
    cache = tmp_path / "city-cache"
    log_dir = LOG_DIR / "empty-cache"
    config = StackConfig.free(env={"ACR_CITY": "full", "ACR_CITY_CACHE_DIR": str(cache)}, log_dir=log_dir)
    stack = Stack(config)
    stack.start(timeout_s=240)
    try:
        assert all(stack.alive().values())
        assert CityData.is_complete(cache_path(cache, "full", 42))
        assert "built in" in _log(stack, "city")
        for service in ("address-finder", "car-dispatcher", "route-monitor", "car-simulator"):
            assert "built in" not in _log(stack, service), f"{service} built the city again"
    finally:
        stack.stop()


def test_a_bad_setting_of_one_service_stops_acr_stack_run_within_seconds() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "acr_stack.cli",
            "run",
            "--free-ports",
            "--service-env",
            "payment:ACR_SQS_WAIT_S=99",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert elapsed < 10, f"took {elapsed:.1f} s"
    last_lines = (run.stdout + run.stderr).strip().splitlines()[-3:]
    assert any("payment" in line and "ACR_SQS_WAIT_S='99'" in line for line in last_lines), last_lines


def test_a_service_that_exits_during_start_up_is_named_with_its_exit_code_and_error(tmp_path: Path) -> None:
    """The settings are valid, but the city file they name does not exist: address-finder dies starting."""
    missing = tmp_path / "nowhere.osm.pbf"
    config = StackConfig.free(
        env={"ACR_CITY": f"osm:{missing}"}, log_dir=LOG_DIR / "dies-at-start", services=("address-finder",)
    )
    stack = Stack(config)
    started = time.monotonic()
    with pytest.raises(StartupFailed) as failure:
        stack.start(timeout_s=180)
    assert time.monotonic() - started < 60  # the exit, not the 180 s health wait
    last = str(failure.value).splitlines()[-1]
    assert last.startswith("address-finder exited with code "), last
    assert "FileNotFoundError" in last and str(missing) in last, last
    assert stack.alive() == {}


def test_a_service_alive_but_not_healthy_reports_its_healthz_answer() -> None:
    """The BFF alone answers ``/healthz`` 503 (the services it calls are not running): the report says so.

    The wait starts once the BFF answers at all: a slow machine cannot make it "does not answer yet"."""
    stack = Stack(StackConfig.free(log_dir=LOG_DIR / "unhealthy", services=()))
    stack.start(timeout_s=120)  # the emulator and the topology only
    try:
        stack.start_service("bff")
        healthz = stack.config.url("bff") + "/healthz"
        wait_until(lambda: (probe(healthz) or "").startswith("answered"), 120, "the bff's /healthz")
        with pytest.raises(StartupTimedOut) as failure:
            stack.wait_healthy("bff", timeout_s=2)
    finally:
        stack.stop()
    last = str(failure.value).splitlines()[-1]
    assert last.startswith("bff is running (pid "), last
    assert "s after it started: /healthz answered 503" in last and '"ride-manager":"down"' in last, last
