"""``ACR_REPLICAS``: what it accepts and refuses, and the processes, ports and settings a stack derives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from acr.settings import SERVICE_PORTS
from acr_stack.replicas import parse_replicas
from acr_stack.runner import InvalidSetting, StackConfig

SERVICES = list(SERVICE_PORTS)


@pytest.mark.parametrize(
    ("text", "bff", "route_monitor", "payment"),
    [
        ("", 1, 1, 1),
        ("2", 2, 2, 2),
        ("bff=3,route-monitor=2", 3, 2, 1),
        ("2,bff=3", 3, 2, 2),
        (" bff = 3 , 2 ", 3, 2, 2),
    ],
)
def test_replicas_per_service(text: str, bff: int, route_monitor: int, payment: int) -> None:
    counts = parse_replicas(text, SERVICES)
    assert (counts["bff"], counts["route-monitor"], counts["payment"]) == (bff, route_monitor, payment)
    assert set(counts) == set(SERVICES)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0", "not a number of replicas"),
        ("two", "not a number of replicas"),
        ("17", "not a number of replicas"),
        ("bff=-1", "not a number of replicas"),
        ("bff=", "not a number of replicas"),
        ("2,3", "two defaults"),
        ("frontend=2", "unknown service 'frontend'"),
        ("bff=2,bff=3", "bff given twice"),
        ("2,,bff=3", "an empty item"),
    ],
)
def test_what_is_not_a_replica_count_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_replicas(text, SERVICES)


def test_a_stack_with_a_bad_replicas_setting_fails_before_anything_starts() -> None:
    with pytest.raises(InvalidSetting, match=r"bad setting ACR_REPLICAS='bff=0': '0' is not a number"):
        StackConfig.free(env={"ACR_REPLICAS": "bff=0"})


def test_one_replica_each_is_the_stack_as_it_was() -> None:
    config = StackConfig.free()
    assert config.replica_ports == {} and config.replicated == {}
    assert [(p.name, p.port) for p in config.processes] == [(s, config.ports[s]) for s in SERVICES]
    env = config.service_env("payment")
    assert env["ACR_REPLICA"] == "payment" and env["ACR_PAYMENT_URL"] == config.url("payment")


def test_each_replica_has_its_own_port_and_name_and_the_service_keeps_its_url() -> None:
    config = StackConfig.free(env={"ACR_REPLICAS": "bff=3,route-monitor=2", "ACR_CHAOS": "1"})
    bffs = config.replicas("bff")
    assert [r.name for r in bffs] == ["bff-1", "bff-2", "bff-3"]
    ports = [r.port for rs in config.replicated.values() for r in rs] + list(config.ports.values())
    assert len(ports) == 3 + 2 + len(SERVICES)
    assert len(set(ports)) == len(ports)
    assert config.replicas("route-monitor-2") == [config.replicas("route-monitor")[1]]
    with pytest.raises(KeyError):
        config.replicas("route-monitor-3")
    env = config.service_env("bff-2")
    assert env["ACR_REPLICA"] == "bff-2" and env["ACR_BFF_URL"] == config.url("bff")
    proxy = f"http://127.0.0.1:{config.proxy_ports['route-monitor']}"
    assert {config.service_env(n)[ENDPOINT] for n in ("route-monitor-1", "route-monitor-2")} == {proxy}
    listed = json.loads(env["ACR_REPLICA_URLS"])
    assert listed["bff"] == {r.name: f"http://127.0.0.1:{r.port}" for r in bffs}
    assert listed["payment"] == {"payment": config.url("payment")}


ENDPOINT = "ACR_AWS_ENDPOINT_URL"


def test_acr_stack_run_stops_at_once_on_a_bad_replicas_setting() -> None:
    env = os.environ | {"ACR_REPLICAS": "bff=3,bff=2"}
    run = [sys.executable, "-m", "acr_stack.cli", "run", "--free-ports"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "nothing was started" in done.stdout
    assert "bad setting ACR_REPLICAS='bff=3,bff=2': bff given twice" in done.stderr
