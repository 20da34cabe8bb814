"""The contract is the API (#14): schemathesis fuzzes the live OpenAPI of the BFF and of every internal
service, with every check it has, and finds nothing: no 5xx, no status or body the schema does not list,
no schema-valid request refused as malformed, no invalid one accepted, ``Allow`` on every 405.

The schemathesis CLI runs in a subprocess, against stacks of this module's own: fuzzing books rides and
reserves cars, so never on the shared ``stack``, and the ops switches (gateway mode, dispatch pause, car
stalls, DLQ redrives, fault windows) on a second stack of their own, so that flipping them cannot turn
another run's valid request into a refusal. The CLI rather than the Python API: its phases (examples,
coverage, fuzzing, stateful), its check set and its seeded deterministic mode are exactly what a person
runs from a shell, and its JSON report gives the numbers printed here. Each run is seeded and
deterministic, and bounded by ``MAX_EXAMPLES``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from rider_client import LOG_DIR
from stack_fixtures import running_stack

from acr.identity import ServiceCredentials
from acr.settings import SERVICE_PORTS
from acr_stack import Stack

pytestmark = pytest.mark.system

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SEED = 20261204
# Cases per operation and phase; fewer for the BFF, whose rider routes are fuzzed within its rate limit.
MAX_EXAMPLES = {"bff": 10}
DEFAULT_EXAMPLES = 25
RIDER_RATE = "18/s"  # under the BFF's 20 requests/s per rider: its rider routes are tested, not its 429
INTERNAL = tuple(s for s in SERVICE_PORTS if s != "bff")
# Operations that flip a switch of the stack (or act on a car, a payment or a ride as an operator): fuzzed on
# the ops stack only.
OPS_SWITCHES = (
    r"^(POST|PUT|PATCH|DELETE) "
    r"(/ops/.*|/v1/ops/.*|/v1/gateway|/v1/cars/[^/]+/(un)?stall|/v1/payments/[^/]+/retry)$"
)


# Whom each internal service's routes admit (``acr.guards.admit``), when not the BFF; the rider a caller
# acts for (ride-manager's rider routes take it from the token); a token that outlives any one run.
CALLERS = {"car-dispatcher": "ride-manager"}
FUZZ_RIDER = "rdr_contract"
TOKEN_TTL_S = 300


def credentials(stack: Stack, service: str) -> dict[str, str]:
    """The headers of a caller holding every credential ``service`` asks for: the ops token (the BFF's
    ``/ops/*``, every service's ``/v1/ops/*``) and, for an internal service, the service token of the
    caller its routes admit, signed with the stack's key of that caller and acting for a rider."""
    headers = {"X-Ops-Token": stack.config.service_env(service)["ACR_OPS_TOKEN"]}
    if service == "bff":
        return headers
    caller = CALLERS.get(service, "bff")
    key = stack.config.service_env(caller)["ACR_SERVICE_KEY"]
    token = ServiceCredentials(caller, private_key=key, ttl_s=TOKEN_TTL_S).token(service, FUZZ_RIDER)
    return headers | {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Run:
    """What a schemathesis run found."""

    service: str
    operations: int
    cases: int
    failures: int
    exit_code: int
    output: str


# Fields that name a place: half the time they get a real one of the stack's city (``city_places``).
PLACE_FIELDS = {
    "address_ids": ("body.pickup.addressId", "body.dropoff.addressId"),
    "lats": ("body.pickup.lat", "body.dropoff.lat", "body.lat", "query.lat"),
    "lons": ("body.pickup.lon", "body.dropoff.lon", "body.lon", "query.lon"),
}


def city_places(stack: Stack) -> str:
    """schemathesis settings (TOML) drawing, half the time, real address ids and points of the stack's city
    for the fields that name a place: a random one is nowhere, so without them no fuzzed quote would price
    a trip, and no fuzzed ride would be booked, cancelled or read."""
    finder, headers = stack.config.url("address-finder"), credentials(stack, "address-finder")
    city = httpx.get(f"{finder}/v1/city", headers=headers, timeout=10).json()
    min_lon, min_lat, max_lon, max_lat = city["bounds"]
    lats = [round(min_lat + (max_lat - min_lat) * step / 4, 6) for step in (1, 2, 3)]
    lons = [round(min_lon + (max_lon - min_lon) * step / 4, 6) for step in (1, 2, 3)]
    nearest = [
        httpx.get(f"{finder}/v1/reverse", params={"lat": lat, "lon": lon}, headers=headers, timeout=10)
        for lat in lats
        for lon in lons
    ]
    address_ids = [answer.json()["addressId"] for answer in nearest]
    values = {"address_ids": address_ids, "lats": lats, "lons": lons}
    lines = [f"[dictionaries.{name}]\nvalues = {json.dumps(found)}\n" for name, found in values.items()]
    lines.append("[parameters]")
    for name, fields in PLACE_FIELDS.items():
        lines += [f'"{field}" = {{ dictionary = "{name}", probability = 0.5 }}' for field in fields]
    return "\n".join(lines) + "\n"


def schemathesis(stack: Stack, service: str, *, ops_switches: bool, headers: dict[str, str]) -> Run:
    """Run schemathesis against ``service``'s live OpenAPI: the ops switches only, or all but them."""
    name = f"{service}{'-ops' if ops_switches else ''}"
    report = (LOG_DIR / "contract-reports" / f"{name}.json").resolve()
    report.parent.mkdir(parents=True, exist_ok=True)
    config = report.with_suffix(".toml")
    config.write_text((HERE / "contract.toml").read_text() + "\n" + city_places(stack))
    argv = [str(SCHEMATHESIS), "--config-file", str(config), "run"]
    argv += [f"{stack.config.url(service)}/openapi.json", "--checks", "all", "--workers", "1"]
    examples = MAX_EXAMPLES.get(service, DEFAULT_EXAMPLES)
    argv += ["--seed", str(SEED), "--generation-deterministic", "--max-examples", str(examples)]
    argv += ["--include-name-regex" if ops_switches else "--exclude-name-regex", OPS_SWITCHES]
    argv += ["--report", "json", "--report-json-path", str(report), "--no-color"]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    if service == "bff":
        argv += ["--rate-limit", RIDER_RATE]
    env = {"SCHEMATHESIS_HOOKS": "contract_checks", "PYTHONPATH": str(HERE)}
    done = subprocess.run(  # in the reports' folder: schemathesis keeps a cache where it runs
        argv,
        capture_output=True,
        text=True,
        timeout=240,
        env=stack.config.service_env() | env,
        cwd=report.parent,
        check=False,
    )
    assert report.exists(), done.stdout[-5_000:] + done.stderr[-5_000:]
    found = json.loads(report.read_text())
    return Run(
        service=service,
        operations=found["operations"]["tested"],
        cases=found["test_cases"]["generated"],
        failures=found["test_cases"]["unique_failures"],
        exit_code=done.returncode,
        output=done.stdout[-20_000:] + done.stderr[-2_000:],
    )


def rider_headers(stack: Stack) -> dict[str, str]:
    """A rider of its own for the BFF's rider routes."""
    answer = httpx.post(f"{stack.config.url('bff')}/api/v1/riders", json={"name": "Fuzz"}, timeout=10)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def check(run: Run) -> None:
    print(f"contract {run.service}: {run.operations} operations, {run.cases} cases, {run.failures} failures")
    assert run.exit_code == 0 and run.failures == 0, run.output


# The fuzzer guesses wrong ops tokens on purpose (``ignored_auth``) and signs up hundreds of riders: on these
# stacks the budgets against guessing and mass sign-ups are out of its way (test_attacks_flooding tests them).
FUZZER_BUDGETS = {"ACR_OPS_GUESSES": "100000", "ACR_SIGNUPS_PER_MINUTE": "60000", "ACR_SIGNUP_BURST": "10000"}


def contract_stack(name: str) -> Iterator[Stack]:
    yield from running_stack(name, **FUZZER_BUDGETS)


# Class-scoped: each stack is stopped before the next one starts.
@pytest.fixture(scope="class")
def fuzzed() -> Iterator[Stack]:
    yield from contract_stack("contract")


@pytest.fixture(scope="class")
def switched() -> Iterator[Stack]:
    yield from contract_stack("contract-ops")


class TestRidesAndServices:
    """Every operation but the ops switches, on a stack where nothing switches them."""

    def test_the_bff_keeps_its_contract(self, fuzzed: Stack) -> None:
        headers = credentials(fuzzed, "bff") | rider_headers(fuzzed)
        check(schemathesis(fuzzed, "bff", ops_switches=False, headers=headers))

    @pytest.mark.parametrize("service", INTERNAL)
    def test_an_internal_service_keeps_its_contract(self, fuzzed: Stack, service: str) -> None:
        check(schemathesis(fuzzed, service, ops_switches=False, headers=credentials(fuzzed, service)))


class TestOpsSwitches:
    """The operations that flip a stack's switches, on a stack of their own."""

    @pytest.mark.parametrize("service", SERVICE_PORTS)
    def test_the_ops_switches_keep_the_contract(self, switched: Stack, service: str) -> None:
        check(schemathesis(switched, service, ops_switches=True, headers=credentials(switched, service)))


def test_the_ops_switches_are_told_apart_by_name() -> None:
    """The split between the two stacks: the switches go to the ops stack, the rest to the other."""
    switches = re.compile(OPS_SWITCHES)
    for name in ("PUT /ops/gateway", "POST /ops/cars/{car_id}/stall", "POST /v1/ops/dlq/redrive"):
        assert switches.match(name), name
    for name in ("PUT /v1/gateway", "POST /v1/cars/{car_id}/unstall", "POST /v1/payments/{ride_id}/retry"):
        assert switches.match(name), name
    for name in ("GET /ops/fleet", "POST /api/v1/rides", "POST /v1/rides/{id}/cancel", "GET /v1/gateway"):
        assert not switches.match(name), name
