"""Where built cities are cached, and build-or-load logic for the cached specs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from .data import FORMAT_VERSION, CityData

ENV_CACHE_DIR = "ACR_CITY_CACHE_DIR"


def _repo_root(start: Path) -> Path | None:
    """Nearest ancestor holding a uv workspace pyproject.toml (the monorepo root)."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "[tool.uv.workspace]" in candidate.read_text(encoding="utf-8"):
            return folder
    return None


def default_cache_dir() -> Path:
    """$ACR_CITY_CACHE_DIR, else <repo>/.cache/acr-city, else ~/.cache/acr-city."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    root = _repo_root(Path(__file__).resolve().parent)
    if root is not None:
        return root / ".cache" / "acr-city"
    return Path.home() / ".cache" / "acr-city"


def cache_path(cache_dir: Path, spec: str, seed: int) -> Path:
    """Versioned file name: city-<spec>-s<seed>-v<format>.npz."""
    return cache_dir / f"city-{spec}-s{seed}-v{FORMAT_VERSION}.npz"


def load_or_build(path: Path, build: Callable[[], CityData], progress: Callable[[str], None]) -> CityData:
    """Load `path` if readable, else build, save and return the data."""
    if path.is_file():
        try:
            started = time.perf_counter()
            data = CityData.load(path)
            progress(f"loaded {path} in {time.perf_counter() - started:.1f}s")
            return data
        except (OSError, ValueError, KeyError) as exc:
            progress(f"cache {path} unreadable ({exc}); rebuilding")
    started = time.perf_counter()
    data = build()
    progress(f"built in {time.perf_counter() - started:.1f}s; saving {path}")
    data.save(path)
    return data
