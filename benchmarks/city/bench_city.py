"""Benchmark acr_city against naive baselines; writes a markdown report.

    python benchmarks/city/bench_city.py [--spec full] [--out benchmarks/results/city.md]

Each measurement: warm-up, then `repeats` rounds of many timed calls (time.perf_counter_ns);
the table shows the median over rounds of each round's p50 and p99.
Baselines: rapidfuzz extractOne over all address labels (text search), numpy brute force
(reverse geocoding, nearest car), networkx Dijkstra on the same graph (routing, dispatch ETA).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acr_city import Bounds, CarIndex, City, load_city

ROOT = Path(__file__).resolve().parents[2]
Row = dict[str, Any]


def measure(
    fn: Callable[[Any], Any], inputs: Sequence[Any], repeats: int = 5, warmup: int = 20
) -> tuple[float, float]:
    """Median over `repeats` rounds of (p50, p99) in microseconds of fn(x) for x in inputs."""
    for x in inputs[:warmup]:
        fn(x)
    p50s, p99s = [], []
    for _ in range(repeats):
        samples = np.empty(len(inputs))
        for i, x in enumerate(inputs):
            start = time.perf_counter_ns()
            fn(x)
            samples[i] = time.perf_counter_ns() - start
        p50s.append(float(np.percentile(samples, 50)) / 1000)
        p99s.append(float(np.percentile(samples, 99)) / 1000)
    return statistics.median(p50s), statistics.median(p99s)


def row(
    name: str,
    ours: tuple[float, float],
    base_name: str = "",
    base: tuple[float, float] | None = None,
    target: str = "",
) -> Row:
    return {"op": name, "ours": ours, "base_name": base_name, "base": base, "target": target}


def typo(text: str, rng: np.random.Generator) -> str:
    """Substitute one letter of the street part (after the house number)."""
    head, _, street = text.partition(" ")
    letters = [i for i, c in enumerate(street) if c.isalpha()]
    i = letters[int(rng.integers(len(letters)))]
    c = "e" if street[i].lower() != "e" else "a"
    return f"{head} {street[:i]}{c}{street[i + 1 :]}"


def bench_text(city: City, rng: np.random.Generator, quick: bool) -> list[Row]:
    from rapidfuzz import fuzz, process

    rows_idx = rng.choice(city.address_count, size=2000, replace=False)
    addresses = [city.address(f"A{int(r)}") for r in rows_idx]
    labels = [a.label for a in addresses]  # type: ignore[union-attr]
    prefixes = [a.street[: int(rng.integers(3, 9))] for a in addresses]  # type: ignore[union-attr]
    typos = [typo(f"{a.house_number} {a.street}", rng) for a in addresses]  # type: ignore[union-attr]
    points = [(a.lat + rng.normal(0, 1e-4), a.lon + rng.normal(0, 2e-4)) for a in addresses]  # type: ignore[union-attr]
    hits = sum(1 for q, a in zip(typos, addresses, strict=True) if (g := city.geocode(q)) and g[0] == a)
    print(f"typo geocode accuracy (ours): {hits}/{len(typos)}")
    data = city.data
    all_labels = [
        f"{n} {s}"
        for n, s in zip(data.addr_number.tolist(), data.street_name[data.addr_street].tolist(), strict=True)
    ]
    n_base = 5 if quick else 20
    base_typo = measure(lambda q: process.extractOne(q, all_labels, scorer=fuzz.ratio), typos[:n_base], 3, 1)
    base_hits = sum(
        1
        for q, a in zip(typos[:n_base], addresses[:n_base], strict=True)
        if process.extractOne(q, all_labels, scorer=fuzz.ratio)[0] == f"{a.house_number} {a.street}"
    )
    print(f"typo geocode accuracy (rapidfuzz scan): {base_hits}/{n_base}")
    ax, ay = city._proj.to_xy(data.addr_lat, data.addr_lon)
    proj = city._proj

    def brute_reverse(p: tuple[float, float]) -> int:
        x, y = proj.point_xy(*p)
        return int(np.argmin((ax - x) ** 2 + (ay - y) ** 2))

    return [
        row("autocomplete (street prefix)", measure(city.autocomplete, prefixes), target="<= 50 µs p99"),
        row(
            "geocode exact label",
            measure(city.geocode, labels),
            "rapidfuzz extractOne scan",
            base_typo,
            "<= 50 µs p99",
        ),
        row(
            "geocode with 1 typo",
            measure(city.geocode, typos),
            "rapidfuzz extractOne scan",
            base_typo,
            "well under 1 ms",
        ),
        row(
            "reverse geocode",
            measure(lambda p: city.reverse(*p), points),
            "numpy brute force",
            measure(brute_reverse, points[:200], 3, 5),
            "<= 50 µs p99",
        ),
    ]


def nx_graph(city: City, reverse: bool = False) -> Any:
    import networkx as nx

    g = nx.DiGraph()
    src, dst, w = city.data.edge_src.tolist(), city.data.edge_dst.tolist(), city.data.edge_time.tolist()
    g.add_weighted_edges_from(zip(dst, src, w, strict=True) if reverse else zip(src, dst, w, strict=True))
    return g


def bench_routing(city: City, rng: np.random.Generator, quick: bool) -> list[Row]:
    import networkx as nx

    g = nx_graph(city)
    g_rev = g.reverse(copy=False)
    n = city.address_count
    pairs = [
        (city.address(f"A{int(a)}"), city.address(f"A{int(b)}")) for a, b in rng.integers(0, n, (300, 2))
    ]
    coords = [(a.lat, a.lon, b.lat, b.lon) for a, b in pairs]  # type: ignore[union-attr]
    snap = city._router.snap
    node_pairs = [(snap(c[0], c[1])[0], snap(c[2], c[3])[0]) for c in coords]
    k = 30 if quick else 100
    ours_route = measure(lambda c: city.route(*c), coords)
    ours_tt = measure(lambda c: city.travel_time(*c), coords)
    base_route = measure(lambda p: nx.dijkstra_path(g, p[0], p[1]), node_pairs[:k], 3, 3)
    fleet = CarIndex(city.bounds)
    car_pts = [city.address(f"A{int(r)}") for r in rng.integers(0, n, 10_000)]
    for i, a in enumerate(car_pts):
        fleet.upsert(f"car{i}", a.lat, a.lon, True)  # type: ignore[union-attr]
    pickups = [city.address(f"A{int(r)}") for r in rng.integers(0, n, 300)]
    near_cases = []
    for p in pickups:
        ids = fleet.nearest(p.lat, p.lon, 200)  # type: ignore[union-attr]
        cars = [(cid, car_pts[int(cid[3:])].lat, car_pts[int(cid[3:])].lon) for cid, _ in ids]  # type: ignore[union-attr]
        near_cases.append((p.lat, p.lon, cars))  # type: ignore[union-attr]
    any_cases = []
    for p in pickups:
        idx = rng.choice(len(car_pts), 200, replace=False)
        any_cases.append((p.lat, p.lon, [(f"car{i}", car_pts[i].lat, car_pts[i].lon) for i in idx]))  # type: ignore[union-attr]

    def nx_etas(case: tuple) -> None:
        lengths = nx.single_source_dijkstra_path_length(
            g_rev, snap(case[0], case[1])[0], cutoff=900, weight="weight"
        )
        [lengths.get(snap(c[1], c[2])[0]) for c in case[2]]

    base_eta = measure(nx_etas, any_cases[:k], 3, 3)
    return [
        row("route (point to point, path)", ours_route, "networkx dijkstra_path", base_route, "<= 20 ms p99"),
        row("travel_time (no path)", ours_tt, "networkx dijkstra_path", base_route, ""),
        row(
            "dispatch ETA, 200 nearest cars, 900 s",
            measure(lambda c: city.etas_to(c[0], c[1], c[2], 900), near_cases),
            "networkx bounded Dijkstra",
            base_eta,
            "<= 5 ms p99",
        ),
        row(
            "dispatch ETA, 200 cars anywhere, 900 s",
            measure(lambda c: city.etas_to(c[0], c[1], c[2], 900), any_cases),
            "networkx bounded Dijkstra",
            base_eta,
            "<= 5 ms p99",
        ),
        row(
            "map_view zoom 15 (2 km box)",
            measure(
                lambda c: city.map_view(c[1] - 0.018, c[0] - 0.009, c[1] + 0.018, c[0] + 0.009, 15),
                coords[:100],
                3,
                5,
            ),
            target="",
        ),
    ]


def bench_cars(city: City, sizes: Sequence[int], rng: np.random.Generator) -> list[Row]:
    """CarIndex nearest/upsert against numpy brute force, at several fleet sizes."""
    return [r for size in sizes for r in bench_car_size(city.bounds, size, rng)]


def bench_car_size(b: Bounds, size: int, rng: np.random.Generator) -> list[Row]:
    lat, lon = rng.uniform(b.min_lat, b.max_lat, size), rng.uniform(b.min_lon, b.max_lon, size)
    avail = rng.random(size) < 0.7
    index = CarIndex(b)
    ids = [f"car{i}" for i in range(size)]
    for i in range(size):
        index.upsert(ids[i], float(lat[i]), float(lon[i]), bool(avail[i]))
    proj = index._proj
    xs, ys = proj.to_xy(lat, lon)
    q_lat, q_lon = rng.uniform(b.min_lat, b.max_lat, 2000), rng.uniform(b.min_lon, b.max_lon, 2000)
    queries = list(zip(q_lat.tolist(), q_lon.tolist(), strict=True))

    def brute(q: tuple[float, float]) -> None:
        x, y = proj.point_xy(*q)
        d = np.where(avail, (xs - x) ** 2 + (ys - y) ** 2, np.inf)
        top = np.argpartition(d, 10)[:10]
        top[np.argsort(d[top])]

    m_car, m_avail = rng.integers(0, size, 5000), rng.random(5000) < 0.7
    m_lat, m_lon = rng.uniform(b.min_lat, b.max_lat, 5000), rng.uniform(b.min_lon, b.max_lon, 5000)
    moves = [(ids[int(m_car[j])], float(m_lat[j]), float(m_lon[j]), bool(m_avail[j])) for j in range(5000)]
    slot = {cid: i for i, cid in enumerate(ids)}

    def brute_update(m: tuple[str, float, float, bool]) -> None:
        i = slot[m[0]]
        xs[i], ys[i] = proj.point_xy(m[1], m[2])
        avail[i] = m[3]

    base_nearest = measure(brute, queries[:200], 3, 5)
    return [
        row(
            f"nearest car k=10 @ {size:,} cars",
            measure(lambda q: index.nearest(*q, 10), queries),
            "numpy brute force",
            base_nearest,
            "<= 100 µs p99 @100k",
        ),
        row(
            f"car upsert @ {size:,} cars",
            measure(lambda m: index.upsert(*m), moves),
            "numpy array write",
            measure(brute_update, moves),
            "<= 10 µs",
        ),
    ]


def fmt(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} µs"


def table(rows: list[Row]) -> str:
    lines = [
        "| operation | ours p50 | ours p99 | baseline | baseline p50 | baseline p99 "
        "| ratio p50 (baseline/ours) | target |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        base = r["base"]
        ratio = "" if not base else f"{base[0] / r['ours'][0]:,.{0 if base[0] >= 10 * r['ours'][0] else 2}f}x"
        lines.append(
            f"| {r['op']} | {fmt(r['ours'][0])} | {fmt(r['ours'][1])} | {r['base_name']} | "
            f"{fmt(base[0]) if base else ''} | {fmt(base[1]) if base else ''} | {ratio} | {r['target']} |"
        )
    return "\n".join(lines)


def footprint(spec: str, seed: int) -> dict[str, str]:
    """Load time and RSS of a fresh process holding the city (measured in a subprocess)."""
    code = (
        "import time,resource;t=time.perf_counter();from acr_city import load_city;"
        f"c=load_city({spec!r},{seed});el=time.perf_counter()-t;"
        "rss=[l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1];"
        "print(el, int(rss)//1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        "load (cached, new process)": f"{float(out[0]):.2f} s",
        "RSS holding the city": f"{out[1]} MiB",
        "peak RSS while loading": f"{out[2]} MiB",
    }


def generation(spec: str, seed: int) -> dict[str, str]:
    from acr_city.cache import cache_path, default_cache_dir
    from acr_city.generator import SPECS, generate
    from acr_city.network import build_city_data

    started = time.perf_counter()
    build_city_data(generate(SPECS[spec], seed)) if spec in SPECS else None
    info = {"generation from scratch (in process)": f"{time.perf_counter() - started:.2f} s"}
    path = cache_path(default_cache_dir(), spec, seed)
    if path.is_file():
        info["cache file"] = f"{path.name}, {path.stat().st_size / 2**20:.1f} MiB"
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="full")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "city.md"))
    parser.add_argument("--quick", action="store_true", help="fewer baseline iterations and car sizes")
    args = parser.parse_args()
    rng = np.random.default_rng(1234)
    city = load_city(args.spec, args.seed, progress=print)
    facts = {
        "city": f"{city.name} ({args.spec}, seed {args.seed}): {city.address_count:,} addresses, "
        f"{city.node_count:,} nodes, {len(city.data.edge_src):,} edges, "
        f"{len(city.data.street_name):,} streets"
    }
    facts.update(generation(args.spec, args.seed))
    facts.update(footprint(args.spec, args.seed))
    rows = bench_text(city, rng, args.quick) + bench_routing(city, rng, args.quick)
    rows += bench_cars(city, [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000], rng)
    machine = (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
        f", load average at end {', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    report = "\n".join(
        [
            "# acr-city benchmark",
            "",
            f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {machine}",
            *[f"- {k}: {v}" for k, v in facts.items()],
            "",
            "Latencies in-process, single thread; median of 5 rounds of p50/p99 (baselines: fewer rounds).",
            "",
            table(rows),
            "",
        ]
    )
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
