"""A few minutes of steady load through the BFF, with the load profile users run (``make load``), on a
stack of its own: the stack must answer in its last minute as it did in its second."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rider_client import LOG_DIR
from stack_fixtures import running_stack

from acr_stack import Stack

pytestmark = [pytest.mark.system, pytest.mark.load]
ROOT = Path(__file__).resolve().parents[2]
MINUTES = 4
RATE = 20  # rides booked per minute


@pytest.fixture(scope="module")
def load_stack() -> Iterator[Stack]:
    yield from running_stack("steady-load", ACR_DISPATCH_TIMEOUT_S="60", ACR_LOG_LEVEL="WARNING")


@pytest.mark.timeout(900)
def test_dispatch_latency_holds_under_a_steady_load(load_stack: Stack) -> None:
    out = LOG_DIR / "steady-load" / "load"
    ports = {"emulator": load_stack.config.emulator_port} | load_stack.config.ports
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load" / "run_load.py"),
            f"--bff={load_stack.config.url('bff')}",
            f"--rate={RATE}",
            f"--minutes={MINUTES}",
            "--ride-timeout-s=180",
            f"--ports={json.dumps(ports)}",
            f"--out={out}",
        ],
        check=True,
        timeout=MINUTES * 60 + 300,
    )
    summary = json.loads(out.with_suffix(".json").read_text())
    minutes = summary["minutes"]
    second, last = minutes[1], minutes[MINUTES - 1]
    assert second["booked"] >= 5 and last["booked"] >= 5, minutes  # enough rides for a median
    assert last["dispatch_p50_s"] <= 2 * second["dispatch_p50_s"], (second, last)
    unfinished = {
        end: n for end, n in summary["ends"].items() if end not in ("PAID", "CANCELLED (RIDER_CANCELLED)")
    }
    assert unfinished == {}, summary["ends"]
    assert all(not m["errors"] for m in minutes), [m["errors"] for m in minutes]
