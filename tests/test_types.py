"""Types are checked, not hoped for: ``mypy --strict`` (pydantic plugin, boto3 stubs) over every ``src/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/src") if p.is_dir()) + sorted(
    str(p.relative_to(ROOT)) for p in ROOT.glob("libs/*/src")
)


def test_every_package_is_typed_and_marked_so() -> None:
    packages = [p for src in SOURCES for p in (ROOT / src).iterdir() if (p / "__init__.py").exists()]
    assert len(packages) >= 11
    assert [p.name for p in packages if not (p / "py.typed").exists()] == []


def test_mypy_strict_finds_nothing_in_any_source_folder() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mypy"), *SOURCES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
