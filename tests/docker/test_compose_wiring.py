"""The compose file's wiring, proven without Docker: every container of ``docker-compose.yml`` runs as a host
process with exactly the command, environment and health check compose gives it (``compose_wiring.py``
says how container names, ports and paths are mapped to this machine), and a ride booked through the BFF
reaches PAID. A wrong variable name, port or start command in the compose file fails it.

``ACR_COMPOSE_FILE=<path>`` runs the system test on another compose file (e.g. a broken scratch copy; its
``build.context`` must lead to this repository's Dockerfile).
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from compose_wiring import HostPlan, HostStack, StartFailed, containers, dead_port, host_plan, serve_address
from docker_model import COMPOSE_FILE, ROOT
from rider_client import LOG_DIR, TERMINAL, Rider, book_ride

from acr.settings import SERVICE_PORTS

START_TIMEOUT_S = 100
RIDE_TIMEOUT_S = 90
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def plan(tmp_path: Path) -> Iterator[HostPlan]:
    with dead_port() as port:
        yield host_plan(containers(COMPOSE_FILE), tmp_path, port)


def _scratch(tmp_path: Path, change: Any) -> Path:
    """A copy of the compose file, changed by ``change(compose)``, building from this repository."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    # one copy per service: the YAML anchors made them share their environment mappings
    compose["services"] = {name: copy.deepcopy(spec) for name, spec in compose["services"].items()}
    for spec in compose["services"].values():
        if "build" in spec:
            spec["build"]["context"] = str(ROOT)
    change(compose)
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(compose, sort_keys=False))
    return path


def _scratch_plan(tmp_path: Path, change: Any) -> HostPlan:
    with dead_port() as port:
        return host_plan(containers(_scratch(tmp_path, change)), tmp_path / "scratch", port)


def _problems(tmp_path: Path, change: Any) -> list[str]:
    return _scratch_plan(tmp_path, change).problems


# --------------------------------------------------------------------------- the mapping (no processes)


def test_every_container_becomes_a_process_with_compose_s_command_and_environment(plan: HostPlan) -> None:
    assert set(plan.processes) == {"localstack", "topology", *SERVICE_PORTS}
    assert plan.problems == []
    for service, port in SERVICE_PORTS.items():
        process = plan.processes[service]
        assert process.argv == [str(VENV_BIN / "python"), "-m", "acr.serve"], "the image's CMD, on PATH"
        assert process.healthcheck is not None
        assert process.healthcheck.argv == [str(VENV_BIN / "python"), "-m", "acr.serve", "--probe"]
        assert process.ports == {port: plan.addresses[service, port]}
        assert process.env["ACR_SERVICE"] == service and process.env["ACR_HOST"] == "127.0.0.1"
        assert process.env["ACR_PORT"] == str(plan.addresses[service, port])
        assert serve_address(process.argv, process.env) == ("127.0.0.1", plan.addresses[service, port])
        for other, other_port in SERVICE_PORTS.items():
            url = process.env[f"ACR_{other.upper().replace('-', '_')}_URL"]
            assert url == f"http://127.0.0.1:{plan.addresses[other, other_port]}"
        assert process.env["ACR_AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{plan.addresses['localstack', 4566]}"
        assert "VIRTUAL_ENV" not in process.env and "PYTEST_CURRENT_TEST" not in process.env, "env leaked"
    assert plan.processes["topology"].argv == [str(VENV_BIN / "acr-topology"), "apply"]
    assert plan.processes["localstack"].stand_in
    city_dirs = {plan.processes[s].env.get("ACR_CITY_CACHE_DIR") for s in SERVICE_PORTS} - {None}
    assert len(city_dirs) == 1, "the city services share one volume"
    assert len({str(p.cwd) for p in plan.processes.values()}) == len(plan.processes), "one home each"


def test_a_url_to_a_port_nobody_listens_on_is_a_problem(tmp_path: Path) -> None:
    def wrong_port(compose: dict[str, Any]) -> None:
        compose["services"]["bff"]["environment"]["ACR_PAYMENT_URL"] = "http://payment:8015"

    assert _problems(tmp_path, wrong_port) == [
        "bff: ACR_PAYMENT_URL names payment:8015, where nothing listens (payment listens on [8005])"
    ]


def test_a_build_arg_port_that_disagrees_with_the_urls_is_a_problem(tmp_path: Path) -> None:
    def wrong_build_arg(compose: dict[str, Any]) -> None:
        compose["services"]["reward"]["build"]["args"]["PORT"] = "8016"

    problems = _problems(tmp_path, wrong_build_arg)
    assert len(problems) == len(SERVICE_PORTS) + 1  # every container's ACR_REWARD_URL (and the topology's)
    assert all("reward:8006, where nothing listens (reward listens on [8016])" in p for p in problems)


def test_a_misspelt_setting_is_a_problem_and_the_real_one_keeps_its_default(tmp_path: Path) -> None:
    def misspelt(compose: dict[str, Any]) -> None:
        env = compose["services"]["ride-manager"]["environment"]
        env["ACR_ADRESS_FINDER_URL"] = env.pop("ACR_ADDRESS_FINDER_URL")

    plan = _scratch_plan(tmp_path, misspelt)
    assert plan.problems == [
        "ride-manager: ACR_ADRESS_FINDER_URL is no setting (libs/acr/src/acr/settings.py)"
    ]
    # the default, http://127.0.0.1:8002/, is the ride-manager container itself: nothing listens there
    env = plan.processes["ride-manager"].env
    assert env["ACR_ADDRESS_FINDER_URL"] == f"http://127.0.0.1:{plan.dead_port}/"


def test_an_unset_setting_keeps_its_default_inside_its_own_container(tmp_path: Path) -> None:
    """Not this machine's 127.0.0.1:8001, where a ``make run`` stack may be listening."""

    def unset(compose: dict[str, Any]) -> None:
        for service in ("bff", "ride-manager"):
            del compose["services"][service]["environment"]["ACR_RIDE_MANAGER_URL"]

    plan = _scratch_plan(tmp_path, unset)
    assert plan.problems == []
    assert plan.processes["bff"].env["ACR_RIDE_MANAGER_URL"] == f"http://127.0.0.1:{plan.dead_port}/"
    own = plan.addresses["ride-manager", 8001]
    assert plan.processes["ride-manager"].env["ACR_RIDE_MANAGER_URL"] == f"http://127.0.0.1:{own}/"


def test_a_command_that_listens_elsewhere_leaves_the_urls_pointing_nowhere(tmp_path: Path) -> None:
    def other_port(compose: dict[str, Any]) -> None:
        compose["services"]["payment"]["command"] = ["python", "-m", "acr.serve", "--port", "9005"]

    problems = _problems(tmp_path, other_port)
    assert problems and all(
        "payment:8005, where nothing listens (payment listens on [9005])" in p for p in problems
    )


def test_an_unknown_hostname_is_a_problem(tmp_path: Path) -> None:
    def typo(compose: dict[str, Any]) -> None:
        compose["services"]["topology"]["environment"]["ACR_AWS_ENDPOINT_URL"] = "http://localstak:4566"

    assert _problems(tmp_path, typo) == [
        "topology: ACR_AWS_ENDPOINT_URL names 'localstak', no compose service"
    ]


# --------------------------------------------------------------------------- the ride


def _log_dir() -> Path:
    folder = LOG_DIR / "compose-wiring"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


@pytest.mark.system
@pytest.mark.timeout(300)
def test_a_ride_reaches_paid_on_the_compose_wiring(tmp_path: Path) -> None:
    compose_file = Path(os.environ.get("ACR_COMPOSE_FILE", COMPOSE_FILE))
    found = containers(compose_file)
    failure = ""
    with dead_port() as port, HostStack(host_plan(found, tmp_path, port), _log_dir()) as stack:
        try:
            stack.start(timeout_s=START_TIMEOUT_S)
            _ride_to_paid(stack.plan.published("bff", found["bff"]))
        except (StartFailed, AssertionError, httpx.HTTPError) as exc:
            failure = f"{exc}\n\n{stack.report()}"
        if not failure and (stack.strays or stack.plan.problems):
            failure = f"the ride was PAID, but:\n{stack.report()}"
    if failure:
        pytest.fail(failure, pytrace=False)


def _ride_to_paid(bff: str) -> None:
    rider = Rider.sign_up(bff, "Compose")
    ride = book_ride(rider, random.Random(20261203))
    done = rider.wait_for(
        ride["rideId"],
        lambda r: (
            r["status"] in TERMINAL - {"PAID"} or (r["status"] == "PAID" and r["pointsEarned"] is not None)
        ),
        timeout_s=RIDE_TIMEOUT_S,
        what="PAID with points",
    )
    assert done["status"] == "PAID", done
