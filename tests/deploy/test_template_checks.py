"""The exported stacks pass cfn-lint (with the serverless rules) and checkov: no error, no warning, no failed
check; every check a resource skips says why, in the resource's Metadata."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted((ROOT / "deploy" / "stacks").glob("*.json"))
CHECKOV = ROOT / ".tools" / "iac" / "bin" / "checkov"


def test_cfn_lint_with_the_serverless_rules_finds_nothing() -> None:
    assert STACKS
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "-a",
            "cfn_lint_serverless.rules",
            "--",
            *map(str, STACKS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _pinned_checkov() -> str:
    found = re.search(r"^CHECKOV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
def checkov() -> dict[str, Any]:
    assert CHECKOV.exists(), f"checkov is not in {CHECKOV.parent}: run `make iac-tools`"
    version = subprocess.run([str(CHECKOV), "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.strip() == _pinned_checkov(), "run `make iac-tools` for the pinned checkov"
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(ROOT / "deploy" / "stacks"),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # offline: no guideline download
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_checkov_fails_no_check(checkov: dict[str, Any]) -> None:
    assert checkov["summary"]["parsing_errors"] == 0
    assert checkov["summary"]["passed"] > 0
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checkov["results"]["failed_checks"]
    ]
    assert failed == []


def test_every_skipped_check_is_justified_next_to_its_resource(checkov: dict[str, Any]) -> None:
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in checkov["results"]["skipped_checks"]
        if len(c["check_result"].get("suppress_comment", "")) < 20
    ]
    assert unexplained == []
    for path in STACKS:
        for logical, resource in json.loads(path.read_text())["Resources"].items():
            lint = resource.get("Metadata", {}).get("cfn-lint", {})
            ignored = lint.get("config", {}).get("ignore_checks", [])
            assert sorted(ignored) == sorted(lint.get("reasons", {})), f"{path.name} {logical}"
