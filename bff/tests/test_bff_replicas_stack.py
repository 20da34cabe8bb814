"""A real service run twice by the stack: its entry point hands connections to each replica in turn, the
BFF's ``/ops/replicas`` table (through its own HTTP adapter) lists both with their pids, and a replica killed
for good shows as unhealthy while the entry point goes on with the other."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from acr.identity import ServiceCredentials
from acr.settings import Settings
from acr_stack.runner import Stack, StackConfig, start_on_free_ports
from bff.adapters.http import HttpServiceStats, ServiceHttp
from bff.replicas import replica_table

pytestmark = pytest.mark.integration


def _bff(stack: Stack) -> ServiceCredentials:
    """What the stack's BFF presents: its service key and the ops token."""
    env = stack.config.service_env("bff")
    ops_token = env.get("ACR_OPS_TOKEN", Settings().ops_token)
    return ServiceCredentials("bff", private_key=env["ACR_SERVICE_KEY"], ops_token=ops_token)


def _who(stack: Stack) -> str:
    request = urllib.request.Request(  # noqa: S310 - loopback
        stack.config.url("reward") + "/v1/ops/replica", headers=_bff(stack).ops_headers()
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        return str(json.load(response)["replica"])


def _table(stack: Stack) -> list[dict[str, Any]]:
    """What the BFF's ``/ops/replicas`` answers for reward, through the BFF's own HTTP adapter."""
    listed = json.loads(stack.config.service_env("reward-1")["ACR_REPLICA_URLS"])

    async def ask() -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            signed = _bff(stack)
            services = HttpServiceStats(
                {"reward": ServiceHttp(client, "reward", stack.config.url("reward"), signed)}, client, signed
            )
            return (await replica_table(Settings(replica_urls=listed), services))["reward"]

    return asyncio.run(ask())


def test_a_service_run_twice_answers_in_turn_and_a_replica_killed_for_good_is_unhealthy(
    tmp_path: Path,
) -> None:
    stack = start_on_free_ports(
        lambda: StackConfig.free(services=("reward",), env={"ACR_REPLICAS": "reward=2"}, log_dir=tmp_path),
        timeout_s=150,
    )
    try:
        assert sorted(_who(stack) for _ in range(4)) == ["reward-1", "reward-1", "reward-2", "reward-2"]
        one, two = stack.config.replicas("reward")
        pids = stack.pids()
        assert _table(stack) == [
            {"replica": "reward-1", "port": one.port, "pid": pids["reward-1"], "healthy": True},
            {"replica": "reward-2", "port": two.port, "pid": pids["reward-2"], "healthy": True},
        ]
        stack.kill("reward-2", for_good=True)
        assert _table(stack)[1] == {"replica": "reward-2", "port": two.port, "pid": None, "healthy": False}
        assert [_who(stack) for _ in range(3)] == ["reward-1"] * 3
    finally:
        stack.stop()
