"""The city cache under concurrent builders: processes that start together on an empty cache folder all
succeed, agree on the city, and build it once; saving never collides with another writer."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from acr_city import load_city
from acr_city.cache import cache_path
from acr_city.city import generate_city_data
from acr_city.data import CityData

BUILDERS = 4
# Each process imports everything first, says so, then waits for the same start signal as the others.
LOADER = """
import sys, time
from pathlib import Path
from acr_city import load_city
cache, go, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
city = load_city("small", 42, cache, progress=lambda line: print(line, flush=True))
print("DIGEST", city.data.digest(), flush=True)
"""


def _digest_line(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("DIGEST"))


def test_processes_starting_together_on_an_empty_cache_build_once_and_agree(tmp_path: Path) -> None:
    cache, go = tmp_path / "cache", tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(BUILDERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LOADER, str(cache), str(go), str(flag)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for flag in ready
    ]
    deadline = time.monotonic() + 60
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]

    assert [proc.returncode for proc in procs] == [0] * BUILDERS, outputs
    digests = {_digest_line(out) for out in outputs}
    assert digests == {generate_city_data("small", 42, lambda _m: None).digest()}
    assert sum("built in" in out for out in outputs) == 1, outputs
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [cache_path(cache, "small", 42).name, cache_path(cache, "small", 42).name + ".lock"]
    )


def test_concurrent_saves_of_one_file_never_collide(tmp_path: Path) -> None:
    """The safety net for writers that do not lock: each writes its own temporary file, then renames."""
    data = generate_city_data("small", 5, lambda _m: None)
    path = tmp_path / "city.npz"
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def save() -> None:
        start.wait()
        try:
            data.save(path)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert CityData.load(path).digest() == data.digest()
    assert [p.name for p in tmp_path.iterdir()] == ["city.npz"]


def test_an_unreadable_cache_file_is_rebuilt(tmp_path: Path) -> None:
    path = cache_path(tmp_path, "small", 42)
    path.write_bytes(b"not a city")
    messages: list[str] = []
    city = load_city("small", 42, tmp_path, progress=messages.append)
    assert any("unreadable" in m for m in messages)
    assert CityData.load(path).digest() == city.data.digest()


def test_prepare_builds_once_then_reports_ready(tmp_path: Path) -> None:
    def prepare(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "acr_city", "prepare", "--cache-dir", str(tmp_path), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    first, second = prepare("--spec", "small"), prepare("--spec", "small")
    assert first.returncode == 0 and "built in" in first.stdout, first
    assert second.returncode == 0 and "is ready" in second.stdout, second
    assert CityData.is_complete(cache_path(tmp_path, "small", 42))

    unknown = prepare("--spec", "gigantic")
    assert unknown.returncode == 2 and "unknown city spec 'gigantic'" in unknown.stderr
