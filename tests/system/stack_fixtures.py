"""The embedded stacks of the system tests (moto server + 8 services on free ports, small city):
one shared stack driven through the ``/ops`` controls, and a one-car stack for fleet exhaustion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rider_client import LOG_DIR

from acr.stack import Stack, StackConfig

SAGA_SETTINGS = {
    "ACR_CITY": "small",
    "ACR_FLEET_SIZE": "60",
    "ACR_SIM_SPEED": "60",
    "ACR_BOARDING_S": "240",
    "ACR_STALL_WINDOW_S": "120",
    "ACR_DISPATCH_TIMEOUT_S": "20",
    "ACR_SQS_WAIT_S": "1",
    "ACR_LOG_LEVEL": "INFO",
}


def running_stack(name: str, **overrides: str) -> Iterator[Stack]:
    """A stack of the saga settings with ``overrides``, its logs in ``LOG_DIR/name``; stopped after."""
    config = StackConfig.free(env=SAGA_SETTINGS | overrides, log_dir=LOG_DIR / name)
    stack = Stack(config)
    stack.start(timeout_s=180)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    yield from running_stack("shared")


@pytest.fixture(scope="session")
def bff_url(stack: Stack) -> str:
    return stack.config.url("bff")


@pytest.fixture(scope="module")
def one_car_stack() -> Iterator[Stack]:
    yield from running_stack("one-car", ACR_FLEET_SIZE="1", ACR_DISPATCH_TIMEOUT_S="6")


CHAOS_FAULTS = (
    "publish.lost_ack=0.2,publish.partial_failure=0.1,publish.throttle=0.1,deliver.duplicate=0.2,"
    "deliver.reorder=0.1,consume.crash_before_ack=0.1,consume.crash_after_commit=0.05,gateway.timeout=0.1"
)


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[Stack]:
    yield from running_stack(
        "chaos",
        ACR_FAULTS=CHAOS_FAULTS,
        ACR_FAULTS_SEED="20261129",
        ACR_BOARDING_S="60",
        ACR_DISPATCH_TIMEOUT_S="300",
    )
