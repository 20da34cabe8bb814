"""The one place that wires test fixtures for the whole workspace.

Every member keeps its tests in its own ``tests/`` folder; fixtures shared inside a folder live in a
uniquely named module there and are registered here (pytest allows ``pytest_plugins`` only at the root).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from acr import tracing

ROOT = Path(__file__).resolve().parent
for folder in ("bff/tests", "tests/system", "tests/browser"):
    sys.path.append(str(ROOT / folder))

pytest_plugins = ["bff_fixtures", "stack_fixtures", "browser_support"]


@pytest.fixture(autouse=True)
def _no_ride_traces_from_earlier_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case starts with a process that remembers no ride's trace: cases reuse ride ids, and a ride
    keeps the first trace it was seen in (``acr.tracing``)."""
    monkeypatch.setattr(tracing, "RIDES", tracing.RideTraces())
