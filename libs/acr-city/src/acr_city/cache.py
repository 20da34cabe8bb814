"""Where built cities are cached, and build-or-load logic that any number of processes may run at once.

Processes that start together on an empty cache folder (the services of ``make run``, test workers,
replicas) agree on one builder: the first takes an exclusive lock on ``<file>.lock`` and builds, the
others wait for the lock and then load what it saved. Saving writes a temporary file of its own and
renames it over the cache file, so even a process that cannot lock (a file system without ``flock``)
never reads a half-written city nor trips over another writer's temporary file.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .data import FORMAT_VERSION, CityData

ENV_CACHE_DIR = "ACR_CITY_CACHE_DIR"
T = TypeVar("T")


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
    """Load `path` if readable, else build it once across processes, save it and return the data."""
    return _once(path, lambda: _load(path, progress), lambda: _saved(build(), path), progress)


def ensure_cached(path: Path, build: Callable[[], CityData], progress: Callable[[str], None]) -> None:
    """Build and save `path` unless it already holds a complete city (checked without loading it)."""

    def complete() -> Path | None:
        if not CityData.is_complete(path):
            return None
        progress(f"city cache {path} is ready")
        return path

    def build_and_save() -> Path:
        build().save(path)
        return path

    _once(path, complete, build_and_save, progress)


def _once(
    path: Path, cached: Callable[[], T | None], build: Callable[[], T], progress: Callable[[str], None]
) -> T:
    """What `cached` finds, else what `build` makes, under the builder lock (checking again once it is held:
    the process we waited for may have built it)."""
    found = cached()
    if found is not None:
        return found
    with _builder_lock(path, progress):
        found = cached()
        if found is not None:
            return found
        started = time.perf_counter()
        made = build()
        progress(f"built in {time.perf_counter() - started:.1f}s; saved {path}")
        return made


def _saved(data: CityData, path: Path) -> CityData:
    data.save(path)
    return data


def _load(path: Path, progress: Callable[[str], None]) -> CityData | None:
    if not path.is_file():
        return None
    try:
        started = time.perf_counter()
        data = CityData.load(path)
    except (OSError, ValueError, KeyError) as exc:
        progress(f"cache {path} unreadable ({exc}); rebuilding")
        return None
    progress(f"loaded {path} in {time.perf_counter() - started:.1f}s")
    return data


@contextmanager
def _builder_lock(path: Path, progress: Callable[[str], None]) -> Iterator[None]:
    """An exclusive ``flock`` on ``<path>.lock`` for as long as one process builds `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress(f"another process is building {path.name}; waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as exc:  # no flock here: the private temporary file keeps saving safe
            progress(f"cannot lock {lock.name} ({exc}); building without the lock")
        yield
