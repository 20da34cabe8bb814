"""Boundaries are checked, not hoped for: import contracts, lint, and the workspace layout."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from acr.settings import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICES = list(SERVICE_PORTS)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold() -> None:
    result = _run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_ruff_finds_nothing() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_shape(service: str) -> None:
    folder = ROOT / service
    module = service.replace("-", "_")
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == f"acr-{service}"
    assert "acr" in project["project"]["dependencies"]
    assert project["project"]["entry-points"]["acr.topology"][service] == f"{module}.topology:TOPOLOGY"
    for path in (  # no Dockerfile: the root Dockerfile builds every service (tests/docker)
        f"src/{module}/main.py",
        f"src/{module}/bootstrap.py",
        f"src/{module}/topology.py",
        "tests",
    ):
        assert (folder / path).exists(), f"{service}/{path}"


def test_services_depend_only_on_the_shared_libraries() -> None:
    for service in SERVICES:
        deps = tomllib.loads((ROOT / service / "pyproject.toml").read_text())["project"]["dependencies"]
        assert not [d for d in deps if d.startswith("acr-") and d.split("[")[0] != "acr-city"], service
