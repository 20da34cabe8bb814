"""One embedded stack (moto server + 8 services on free ports, small city) shared by the system tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from acr.stack import Stack, StackConfig

LOG_DIR = Path(os.environ.get("ACR_TEST_LOG_DIR", ".run/test-logs"))


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    config = StackConfig.free(
        env={"ACR_CITY": "small", "ACR_SIM_SPEED": "120", "ACR_LOG_LEVEL": "INFO", "ACR_SQS_WAIT_S": "1"},
        log_dir=LOG_DIR / "system",
    )
    running = Stack(config)
    running.start(timeout_s=180)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def bff_url(stack: Stack) -> str:
    return stack.config.url("bff")
