"""Registers the `slow` marker (the full-city test) when run from the workspace root."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: loads (first run: generates and caches) the full city")
