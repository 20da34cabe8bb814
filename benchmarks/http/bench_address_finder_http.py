"""Benchmark address-finder over loopback HTTP against the HTTP floor; writes a markdown report.

    python benchmarks/http/bench_address_finder_http.py [--requests 2000] [--repeats 7]
        [--out benchmarks/results/address-finder-http.md]

Starts the real service (``uvicorn address_finder.main:create_app --factory``, ``ACR_CITY=full``) and a
trivial FastAPI app (``floor_app.py``: one ``async def`` route returning a tiny JSON) as two uvicorn processes
started the same way, then talks to each over ONE keep-alive ``http.client.HTTPConnection``, sequentially.
Query inputs are built by asking the service itself (``/v1/reverse`` at seeded random points inside the
``/v1/city`` bounds).
Each repeat times the floor and then every operation (``requests`` calls each), so every repeat has its own
floor measured seconds apart; the table shows the median over repeats of each repeat's p50 and p99.
Also: process start to healthy, the service's RSS (``/proc/<pid>/status`` VmRSS), and the same operations
in-process (``acr_city.load_city("full")`` in this process), with and without ``gc.freeze()``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import http.client
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from acr.identity import ServiceCredentials
from acr_stack.keys import ServiceKeys
from acr_stack.runner import free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
KEYS = ServiceKeys.generate()  # the service started alone checks ride-manager's tokens (its real caller)
RIDE_MANAGER = ServiceCredentials("ride-manager", private_key=KEYS.private["ride-manager"])
HEALTHY_TARGET_S = 15.0
RSS_TARGET_MIB = 1024.0


@dataclass
class Server:
    name: str
    pid: int
    port: int
    started: float
    healthy_s: float = 0.0
    conn: http.client.HTTPConnection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {RIDE_MANAGER.token(self.name)}"})
        response = self.conn.getresponse()
        return response.status, response.read()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"{self.name} {path}: HTTP {status} {body[:200]!r}")
        return json.loads(body)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")


def _healthy(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def serve(
    name: str, app: str, health: str, env: dict[str, str], app_dir: Path | None = None
) -> Iterator[Server]:
    """``python -m uvicorn APP`` on a free loopback port (APP ``module:name()`` is an app factory);
    yields once ``health`` answers 200."""
    port = free_port()
    cmd = [
        str(VENV_PYTHON),
        "-m",
        "uvicorn",
        app.removesuffix("()"),
        *(["--factory"] if app.endswith("()") else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    if app_dir:
        cmd += ["--app-dir", str(app_dir)]
    started = time.perf_counter()
    log = open(Path(tempfile.gettempdir()) / f"bench-{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, proc.pid, port, started)
    try:
        while not _healthy(port, health):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
            if time.perf_counter() - started > 120:
                raise RuntimeError(f"{name} not healthy after 120 s")
            time.sleep(0.02)
        server.healthy_s = time.perf_counter() - started
        yield server
    finally:
        server.conn.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def typo(text: str, rng: random.Random) -> str:
    """Substitute one letter of the street part (after the house number), as bench_city does."""
    head, _, street = text.partition(" ")
    letters = [i for i, c in enumerate(street) if c.isalpha()]
    i = rng.choice(letters)
    c = "e" if street[i].lower() != "e" else "a"
    return f"{head} {street[:i]}{c}{street[i + 1 :]}"


@dataclass
class Inputs:
    prefixes: list[str]
    labels: list[str]
    typos: list[str]
    points: list[tuple[float, float]]


@contextmanager
def attached(name: str, port: int) -> Iterator[Server]:
    """A service that is already running (e.g. in ``make run``'s stack) on ``port``."""
    pid = next(
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == "LISTEN"
    )
    server = Server(name, pid, port, time.perf_counter())
    try:
        yield server
    finally:
        server.conn.close()


def build_inputs(service: Server, n: int, seed: int) -> Inputs:
    """Ask the service: reverse-geocode seeded random points inside its bounds, derive the queries."""
    rng = random.Random(seed)
    min_lon, min_lat, max_lon, max_lat = service.json("/v1/city")["bounds"]
    prefixes, labels, typos, points = [], [], [], []
    while len(labels) < n:
        lat, lon = rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon)
        status, body = service.get(f"/v1/reverse?lat={lat:.6f}&lon={lon:.6f}")
        if status != 200:
            continue
        label = json.loads(body)["label"]
        number_street = label.split(",")[0]
        street = number_street.partition(" ")[2]
        labels.append(label)
        prefixes.append(street[: rng.randint(3, 8)])
        typos.append(typo(number_street, rng))
        points.append((lat, lon))
    return Inputs(prefixes, labels, typos, points)


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def http_paths(inputs: Inputs) -> dict[str, list[str]]:
    return {
        "autocomplete (street prefix, limit 5)": [
            f"/v1/autocomplete?q={q(p)}&limit=5" for p in inputs.prefixes
        ],
        "geocode exact label": [f"/v1/geocode?q={q(label)}" for label in inputs.labels],
        "geocode with 1 typo": [f"/v1/geocode?q={q(t)}" for t in inputs.typos],
        "reverse geocode": [f"/v1/reverse?lat={lat:.6f}&lon={lon:.6f}" for lat, lon in inputs.points],
    }


def percentiles_us(samples_ns: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(samples_ns, 50)) / 1000, float(np.percentile(samples_ns, 99)) / 1000


def _one(server: Server, path: str, statuses: dict[int, int]) -> int:
    start = time.perf_counter_ns()
    server.conn.request("GET", path)
    response = server.conn.getresponse()
    response.read()
    elapsed = time.perf_counter_ns() - start
    statuses[response.status] = statuses.get(response.status, 0) + 1
    return elapsed


def time_paired(
    server: Server,
    paths: Sequence[str],
    floor: Server,
    statuses: dict[int, int],
    floor_statuses: dict[int, int],
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Alternate one floor request and one operation request, so both see the same machine noise."""
    samples, floor_samples = np.empty(len(paths)), np.empty(len(paths))
    for i, path in enumerate(paths):
        floor_samples[i] = _one(floor, "/ping", floor_statuses)
        samples[i] = _one(server, path, statuses)
    return percentiles_us(samples), percentiles_us(floor_samples)


def time_calls(fn: Callable[[Any], Any], inputs: Sequence[Any]) -> np.ndarray:
    samples = np.empty(len(inputs))
    for i, x in enumerate(inputs):
        start = time.perf_counter_ns()
        fn(x)
        samples[i] = time.perf_counter_ns() - start
    return samples


def med(rounds: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)


@dataclass
class HttpResult:
    ops: dict[str, tuple[float, float]]
    floors: dict[str, tuple[float, float]]
    statuses: dict[str, dict[int, int]]


def bench_http(service: Server, floor: Server, inputs: Inputs, n: int, repeats: int) -> HttpResult:
    paths = {"GET /healthz of address-finder (same app, no work)": ["/healthz"] * n}
    paths.update({name: p[:n] for name, p in http_paths(inputs).items()})
    statuses: dict[str, dict[int, int]] = {name: {} for name in ["floor", *paths]}
    for p in paths.values():  # warm-up
        time_paired(service, p[: min(300, n)], floor, {}, {})
    op_rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    floor_rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for r in range(repeats):
        for name, p in paths.items():
            ours, base = time_paired(service, p, floor, statuses[name], statuses["floor"])
            op_rounds[name].append(ours)
            floor_rounds[name].append(base)
        print(
            f"  repeat {r + 1}/{repeats} (p50/p99 µs, op vs floor): "
            + "; ".join(
                f"{name.split(' (')[0]} {v[-1][0]:.0f}/{v[-1][1]:.0f} vs "
                f"{floor_rounds[name][-1][0]:.0f}/{floor_rounds[name][-1][1]:.0f}"
                for name, v in op_rounds.items()
            ),
            flush=True,
        )
    return HttpResult(
        {k: med(v) for k, v in op_rounds.items()}, {k: med(v) for k, v in floor_rounds.items()}, statuses
    )


def bench_in_process(
    inputs: Inputs, n: int, repeats: int
) -> tuple[dict[str, dict[str, tuple[float, float]]], str]:
    """city.autocomplete/geocode/reverse in this process; rounds alternate gc as is / after gc.freeze().
    Also each input's best time over all rounds: its percentiles estimate the cost without machine noise."""
    from acr_city import load_city

    started = time.perf_counter()
    city = load_city("full")
    load_s = time.perf_counter() - started
    tracked = len(gc.get_objects())
    calls: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]] = {
        "autocomplete (street prefix, limit 5)": (lambda p: city.autocomplete(p, 5), inputs.prefixes[:n]),
        "geocode exact label": (city.geocode, inputs.labels[:n]),
        "geocode with 1 typo": (city.geocode, inputs.typos[:n]),
        "reverse geocode": (lambda p: city.reverse(*p), inputs.points[:n]),
    }
    for fn, xs in calls.values():
        for x in xs[:300]:
            fn(x)
    rounds: dict[str, dict[str, list[tuple[float, float]]]] = {
        mode: {name: [] for name in calls} for mode in ("gc as is", "gc.freeze()")
    }
    best = {name: np.full(len(xs), np.inf) for name, (_, xs) in calls.items()}
    for _ in range(repeats):
        for mode in rounds:
            if mode == "gc.freeze()":
                gc.collect()
                gc.freeze()
            for name, (fn, xs) in calls.items():
                samples = time_calls(fn, xs)
                rounds[mode][name].append(percentiles_us(samples))
                best[name] = np.minimum(best[name], samples)
            gc.unfreeze()
    info = f"city loaded in this process in {load_s:.2f} s; {tracked:,} gc-tracked objects after loading"
    results = {mode: {k: med(v) for k, v in ops.items()} for mode, ops in rounds.items()}
    results["best"] = {name: percentiles_us(b) for name, b in best.items()}
    return results, info


def fmt(us: float) -> str:
    sign, us = ("-" if us < 0 else ""), abs(us)
    return sign + (f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs" if us >= 100 else f"{us:.1f} µs")


def http_table(result: HttpResult, target_us: float) -> str:
    lines = [
        "| operation | p50 | p99 | floor p50 / p99 | p50 minus floor | p99 minus floor | p99 / floor p99 "
        "| target | met? |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, (p50, p99) in result.ops.items():
        f50, f99 = result.floors[name]
        is_op = not name.startswith("GET /healthz")
        lines.append(
            f"| {name} | {fmt(p50)} | {fmt(p99)} | {fmt(f50)} / {fmt(f99)} "
            f"| {fmt(p50 - f50)} | {fmt(p99 - f99)} "
            f"| {p99 / f99:.2f}x | {'<= 1 ms p99' if is_op else ''} "
            f"| {('yes' if p99 <= target_us else 'NO') if is_op else ''} |"
        )
    return "\n".join(lines)


def in_process_table(results: dict[str, dict[str, tuple[float, float]]], target_us: float) -> str:
    plain, frozen, best = results["gc as is"], results["gc.freeze()"], results["best"]
    lines = [
        "| operation | p50 | p99 | p50 after gc.freeze() | p99 after gc.freeze() | per-input best: p50 / p99 "
        "| target | met? (as is / frozen / per-input best) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, (p50, p99) in plain.items():
        fp50, fp99 = frozen[name]
        bp50, bp99 = best[name]
        met = " / ".join("yes" if v <= target_us else "NO" for v in (p99, fp99, bp99))
        lines.append(
            f"| {name} | {fmt(p50)} | {fmt(p99)} | {fmt(fp50)} | {fmt(fp99)} | {fmt(bp50)} / {fmt(bp99)} "
            f"| <= 50 µs p99 | {met} |"
        )
    return "\n".join(lines)


def stack_report(
    args: argparse.Namespace,
    date: str,
    load_start: str,
    city: dict[str, Any],
    result: HttpResult,
) -> str:
    return "\n".join(
        [
            "# address-finder over HTTP, inside the whole running stack",
            "",
            f"- date: {date}; load average (1, 5, 15 min) at start: {load_start}; at end: {load()}",
            f"- the address-finder of a running stack (`make run`: emulator + 8 services, full city "
            f"{city['addresses']:,} addresses), port {args.stack_port}, no rides (idle stack)",
            f"- client and floor as in `address-finder-http.md`: one keep-alive connection, {args.requests} "
            f"requests per operation per repeat, {args.repeats} repeats; the floor app runs beside the stack",
            "",
            http_table(result, 1000.0),
            "",
        ]
    )


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per operation per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "address-finder-http.md"))
    parser.add_argument(
        "--stack-port",
        type=int,
        help="measure the address-finder of a running stack on this port (8002 under make run) instead "
        "of starting one alone; skips the in-process part",
    )
    args = parser.parse_args()
    load_start = load()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    env = {"ACR_CITY": "full", "ACR_LOG_LEVEL": "WARNING"} | KEYS.env("address-finder")
    alone = args.stack_port is None
    with (
        serve("address-finder", "address_finder.main:create_app()", "/healthz", env)
        if alone
        else attached("address-finder", args.stack_port) as service,
        serve("floor", "floor_app:app", "/ping", env, app_dir=HERE) as floor,
    ):
        rss_healthy = service.rss_mib()
        print(f"address-finder healthy in {service.healthy_s:.2f} s, RSS {rss_healthy:.0f} MiB", flush=True)
        inputs = build_inputs(service, args.requests, args.seed)
        city = service.json("/v1/city")
        print(f"inputs: {len(inputs.labels)} per operation (seed {args.seed}); timing over HTTP", flush=True)
        result = bench_http(service, floor, inputs, args.requests, args.repeats)
        rss_end = service.rss_mib()
        floor_rss = floor.rss_mib()
    if not alone:
        report = stack_report(args, date, load_start, city, result)
        print(report)
        Path(args.out).write_text(report, encoding="utf-8")
        return
    print("timing in-process", flush=True)
    in_proc, in_proc_info = bench_in_process(inputs, args.requests, args.repeats)
    machine = (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    non_200 = {k: {s: c for s, c in v.items() if s != 200} for k, v in result.statuses.items()}
    non_200 = {k: v for k, v in non_200.items() if v}
    healthy_met = "met" if service.healthy_s <= HEALTHY_TARGET_S else "NOT met"
    rss_met = "met" if max(rss_healthy, rss_end) < RSS_TARGET_MIB else "NOT met"
    report = "\n".join(
        [
            "# address-finder over HTTP",
            "",
            f"- date: {date}",
            f"- machine: {machine}",
            f"- load average (1, 5, 15 min) at start: {load_start}; at end: {load()}",
            f"- city: {city['name']} (full): {city['addresses']:,} addresses, {city['nodes']:,} street nodes",
            "- server: `python -m uvicorn address_finder.main:create_app --factory --no-access-log` "
            "(uvloop + httptools), ACR_CITY=full, ACR_LOG_LEVEL=WARNING; one process, one worker",
            f"- process start to `/healthz` 200: {service.healthy_s:.2f} s "
            f"(target <= {HEALTHY_TARGET_S:.0f} s: "
            f"{healthy_met}); floor app: {floor.healthy_s:.2f} s",
            f"- RSS of the service: {rss_healthy:.0f} MiB when healthy, {rss_end:.0f} MiB after the run "
            f"(target < 1 GiB: {rss_met}); floor app: {floor_rss:.0f} MiB",
            f"- client: one keep-alive `http.client.HTTPConnection` per server, sequential; {args.requests} "
            f"requests per operation per repeat, {args.repeats} repeats; inputs from `/v1/reverse` at seeded "
            "random points in `/v1/city` bounds (typo: one letter of the street name substituted)",
            "- floor: `benchmarks/http/floor_app.py`, a FastAPI app with one `async def` route returning "
            '`{"ok": true}`, served by uvicorn the same way; requests alternate floor, operation, floor, '
            "operation... on the two connections, so each operation has its own floor measured under the "
            "same machine noise",
            f"- non-200 answers: {non_200 or 'none'}",
            "",
            "Median over repeats of each repeat's p50 / p99 (a request = send + full response read).",
            "",
            http_table(result, 1000.0),
            "",
            "## In-process (the same inputs, `acr_city` in the benchmark process)",
            "",
            f"{in_proc_info}; rounds alternate between the collector as is and after `gc.collect(); "
            'gc.freeze()`. "per-input best": each input\'s fastest time over all rounds, whose p99 is '
            "what the index itself costs without the machine's noise (preemption, other processes).",
            "",
            in_process_table(in_proc, 50.0),
            "",
        ]
    )
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
