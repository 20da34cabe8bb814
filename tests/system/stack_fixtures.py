"""The embedded stacks of the system tests (moto server + 8 services on free ports, small city):
one shared stack driven through the ``/ops`` controls, a one-car stack for fleet exhaustion, a chaos
stack with faults injected at every boundary, and an outage stack whose services talk to the emulator
through the fault proxy."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from rider_client import LOG_DIR, Ops

from acr_stack import Stack, StackConfig
from acr_stack.runner import start_on_free_ports

SAGA_SETTINGS = {
    "ACR_CITY": "small",
    "ACR_FLEET_SIZE": "60",
    "ACR_SIM_SPEED": "60",
    "ACR_BOARDING_S": "240",
    "ACR_STALL_WINDOW_S": "120",
    "ACR_DISPATCH_TIMEOUT_S": "60",  # the timeout is tested on the one-car stack; a burst is no timeout
    "ACR_SQS_WAIT_S": "1",
    "ACR_LOG_LEVEL": "INFO",
    "ACR_SIGNUP_BURST": "1000",  # the suites sign up all their riders from one address
}


def running_stack(name: str, **overrides: str) -> Iterator[Stack]:
    """A stack of the saga settings with ``overrides``, its logs in ``LOG_DIR/name``; stopped after."""
    settings = SAGA_SETTINGS | overrides
    stack = start_on_free_ports(lambda: StackConfig.free(env=settings, log_dir=LOG_DIR / name), timeout_s=180)
    try:
        fleet_listed(Ops.of(stack), int(settings["ACR_FLEET_SIZE"]))
        yield stack
    finally:
        stack.stop()


def emulator(stack: Stack, service: str) -> Any:
    """A boto3 client of ``service`` on the stack's emulator."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=stack.config.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def copies_of(stack: Stack, table: str) -> list[str]:
    """The tables of a read model declared as ``table``: its generations' copies (``<table>-g<n>``)."""
    return sorted(t for t in emulator(stack, "dynamodb").list_tables()["TableNames"] if t.startswith(table))


def replay_state(stack: Stack, replay: str) -> str:
    """EventBridge's state of an archive replay (a rebuild names its replay in ``lastRebuild``)."""
    return str(emulator(stack, "events").describe_replay(ReplayName=replay)["State"])


def fleet_listed(ops: Ops, size: int) -> None:
    """Wait until the fleet view lists every seeded car: it is built from their events, one hop through
    the bus after the dispatcher seeded them, so a test reading ``/ops/fleet`` at once could miss some."""
    ops.wait(lambda: len(ops.get("/fleet")["cars"]) == size, what=f"the fleet view lists {size} cars")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    yield from running_stack("shared")


@pytest.fixture(scope="session")
def bff_url(stack: Stack) -> str:
    return stack.config.url("bff")


@pytest.fixture(scope="session")
def ops(stack: Stack) -> Ops:
    """The shared stack's ops API, with its ops token."""
    return Ops.of(stack)


@pytest.fixture(scope="module")
def one_car_stack() -> Iterator[Stack]:
    yield from running_stack("one-car", ACR_FLEET_SIZE="1", ACR_DISPATCH_TIMEOUT_S="6")


CHAOS_FAULTS = (
    "publish.lost_ack=0.2,publish.partial_failure=0.1,publish.throttle=0.1,deliver.duplicate=0.2,"
    "deliver.reorder=0.1,consume.crash_before_ack=0.1,consume.crash_after_commit=0.05,gateway.timeout=0.1,"
    "uow.crash_before_commit=0.1,uow.conflict=0.1"
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


@pytest.fixture
def outage_stack() -> Iterator[Stack]:
    """A stack with chaos on: the services reach the emulator through the fault proxy, and the BFF's
    ``/ops/chaos`` opens outages on it; a short boarding so that a ride ends soon. (Per test: it is gone
    before the storm's stack starts.)"""
    yield from running_stack("outages", ACR_CHAOS="1", ACR_BOARDING_S="30")


STORM_SETTINGS = {
    "ACR_CHAOS": "1",
    "ACR_FLEET_SIZE": "40",
    "ACR_SIM_SPEED": "20",  # a ride takes about a minute: each phase lasts seconds, not a blink
    "ACR_BOARDING_S": "120",  # 6 s of boarding at the pickup
    "ACR_DISPATCH_TIMEOUT_S": "30",
    "ACR_ASSIGNMENT_WAIT_S": "60",
    "ACR_RIDE_GRACE_S": "45",
    "ACR_PAYMENT_DEADLINE_S": "30",
    "ACR_WATCHDOG_SETTLE_S": "15",
    "ACR_MAX_ACTIVE_RIDES": "10",  # a storm rider's rides overlap while outages hold them up
}


@pytest.fixture
def storm_stack() -> Iterator[Stack]:
    """A chaos stack for the storm of outages, fault windows and kills: short rides and deadlines short
    enough to fire within the test (every ride must end within minutes of the last fault)."""
    yield from running_stack("outage-storm", **STORM_SETTINGS)


@pytest.fixture(scope="module")
def attack_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack of its own for each module of attacks (floods and forgeries change a stack's state), with
    the module's ``STACK_SETTINGS`` if it has any (e.g. the shipped sign-up limit)."""
    yield from running_stack(
        "attacks-" + request.module.__name__.removeprefix("test_attacks_"),
        **getattr(request.module, "STACK_SETTINGS", {}),
    )


RIDE_ID = re.compile(r"ride_[0-9a-f]{32}")
STACK_LINES = 40  # warnings and errors of any kind
RIDE_LINES = 300  # lines about the rides a failure names


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed test's report ends with what the stacks logged meanwhile about its rides, and their
    warnings and errors: on a CI machine those lines are all there is to go on. (A storm of outages logs
    thousands of warnings, so the lines about the named rides are kept apart from them.)"""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        since = datetime.fromtimestamp(call.start, UTC)
        about, warnings = _stack_lines(since=since, about=set(RIDE_ID.findall(report.longreprtext)))
        if about:
            report.sections.append(
                ("what the stacks logged about the rides named", "\n".join(about[-RIDE_LINES:]))
            )
        if warnings:
            report.sections.append(
                ("the stacks' last warnings and errors", "\n".join(warnings[-STACK_LINES:]))
            )


def _stack_lines(*, since: datetime, about: set[str]) -> tuple[list[str], list[str]]:
    """Log lines of every stack since ``since``: those that name a ride in ``about``, and the other
    warnings and errors; each in time order."""
    found: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
    for log in LOG_DIR.glob("*/*.log"):
        if datetime.fromtimestamp(log.stat().st_mtime, UTC) < since:
            continue
        for raw in log.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict) or datetime.fromisoformat(line["time"]) < since:
                continue
            named = line.get("rideId") in about
            if named or line["level"] in ("WARNING", "ERROR", "CRITICAL"):
                exception = line.get("exception", "").splitlines()[-1:]
                text = " ".join(
                    [log.parent.name, line["service"], line["level"], line["message"], *exception]
                )
                found[named].append((line["time"], text))
    return [text for _, text in sorted(found[True])], [text for _, text in sorted(found[False])]
