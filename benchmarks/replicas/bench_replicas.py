"""Saga throughput with one and with two replicas of every service, in one run, on this machine.

    .venv/bin/python benchmarks/replicas/bench_replicas.py --rate 20 --minutes 5 --replicas 1,2

For each replica count, one after the other: an embedded stack on free ports (``ACR_REPLICAS=<n>``), the
rider load of ``make load`` (``benchmarks/load``) at a fixed booking rate for ``--minutes``, then the stack
is stopped. The report compares each count with the first (the baseline): rides PAID per minute, dispatch
and book->PAID latency (median and p99 over all rides), and CPU seconds per minute of the emulator and of
the services, so the bottleneck shows: the emulator is one process on one core (60 CPU-s a minute at most).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from acr_stack import StackConfig
from acr_stack.runner import start_on_free_ports

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_one(replicas: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """One stack with ``ACR_REPLICAS=replicas`` under the load; the load's JSON summary plus the ports."""
    env = {
        "ACR_REPLICAS": replicas,
        "ACR_CITY": args.city,
        "ACR_SIM_SPEED": str(args.sim_speed),
        "ACR_LOG_LEVEL": "WARNING",
        "ACR_SIGNUP_BURST": "10000",  # the load signs up every rider from one address
    }
    stack = start_on_free_ports(
        lambda: StackConfig.free(env=env, log_dir=out_dir / f"replicas-{replicas}"), timeout_s=300
    )
    try:
        entry = stack.config.url("bff")
        ops = {"X-Ops-Token": stack.config.ops_token}
        members = httpx.get(f"{entry}/ops/replicas", headers=ops, timeout=20).json()
        ports = {"emulator": stack.config.emulator_port} | {
            str(m["replica"]): int(m["port"]) for service in members.values() for m in service
        }
        out = out_dir / f"load-{replicas}"
        subprocess.run(
            [
                sys.executable, str(ROOT / "benchmarks/load/run_load.py"),
                "--bff", entry, "--rate", str(args.rate), "--minutes", str(args.minutes),
                "--cancel", "0", "--ports", json.dumps(ports), "--out", str(out),
            ],
            check=True, cwd=ROOT,
        )  # fmt: skip
        summary: dict[str, Any] = json.loads(out.with_suffix(".json").read_text())
        summary["replica_ports"] = ports
        return summary
    finally:
        stack.stop()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def figures(summary: dict[str, Any], minutes: float) -> dict[str, float]:
    """What the report compares: throughput, latencies over every ride, CPU per minute by kind."""
    rides = list(summary["rides"].values())
    dispatch = [r["dispatch_s"] for r in rides if r["dispatch_s"] is not None]
    paid = [r["paid_s"] for r in rides if r["paid_s"] is not None]
    cpu: dict[str, float] = {}
    for minute in summary["minutes"]:
        for name, seconds in minute["cpu_s"].items():
            kind = "emulator" if name == "emulator" else "services"
            cpu[kind] = cpu.get(kind, 0.0) + seconds
    measured = max(1, len(summary["minutes"]))
    return {
        "paid_per_min": sum(1 for r in rides if r["end"] == "PAID") / minutes,
        "dispatch_p50_s": statistics.median(dispatch) if dispatch else float("nan"),
        "dispatch_p99_s": _pct(dispatch, 0.99),
        "paid_p50_s": statistics.median(paid) if paid else float("nan"),
        "paid_p99_s": _pct(paid, 0.99),
        "emulator_cpu_s_per_min": cpu.get("emulator", 0.0) / measured,
        "services_cpu_s_per_min": cpu.get("services", 0.0) / measured,
    }


def markdown(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    counts = list(results)
    base = results[counts[0]]
    lines = [
        "# Saga throughput with replicas",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average at the end {os.getloadavg()[0]:.2f}.",
        f"`benchmarks/replicas/bench_replicas.py --rate {args.rate:g} --minutes {args.minutes:g} "
        f"--replicas {args.replicas} --city {args.city} --sim-speed {args.sim_speed:g}`: "
        "one stack per count, one after the other, the same booking rate; "
        f"ratios against {counts[0]} replica(s) per service.",
        "",
        "| figure | " + " | ".join(f"{c} replica(s)" for c in counts) + " | ratio |",
        "|---|" + "---|" * (len(counts) + 1),
    ]
    for key in base:
        row = [f"{results[c][key]:.2f}" for c in counts]
        ratio = results[counts[-1]][key] / base[key] if base[key] else float("nan")
        lines.append(f"| {key} | " + " | ".join(row) + f" | {ratio:.2f}x |")
    lines += [
        "",
        "Below saturation the rides PAID per minute follow the booking rate, so the cost of replicas shows "
        "in latency and CPU; the CPU a ride cost says where each count would run out:",
        "",
        *(_limits(count, figures) for count, figures in results.items()),
    ]
    return "\n".join(lines) + "\n"


def _limits(count: str, figures: dict[str, float]) -> str:
    """Where this run would run out: the emulator's one core or the machine's cores, whichever fills first
    at the CPU seconds a PAID ride cost here."""
    paid = figures["paid_per_min"] or float("nan")
    emulator_per_ride = figures["emulator_cpu_s_per_min"] / paid
    all_per_ride = (figures["emulator_cpu_s_per_min"] + figures["services_cpu_s_per_min"]) / paid
    emulator_ceiling = 60 / emulator_per_ride
    machine_ceiling = 60 * (os.cpu_count() or 1) / all_per_ride
    bottleneck = "the emulator's single core" if emulator_ceiling <= machine_ceiling else "the machine's CPUs"
    return (
        f"- {count} replica(s): a PAID ride cost {emulator_per_ride:.2f} emulator CPU-s and "
        f"{all_per_ride:.2f} CPU-s in all; the emulator's core fills at about {emulator_ceiling:.0f} "
        f"rides/min, the {os.cpu_count()} CPUs at about {machine_ceiling:.0f}: "
        f"the bottleneck is {bottleneck}."
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20, help="rides booked per minute")
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--replicas", default="1,2", help="the replica counts to compare, baseline first")
    parser.add_argument("--city", default="full")
    parser.add_argument("--sim-speed", type=float, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/replicas.md")
    args = parser.parse_args()
    out_dir = ROOT / ".run/bench-replicas" / time.strftime("%Y%m%d-%H%M%S")
    results = {}
    for replicas in args.replicas.split(","):
        summary = run_one(replicas, args, out_dir)
        results[replicas] = figures(summary, args.minutes)
        (out_dir / f"figures-{replicas}.json").write_text(json.dumps(results[replicas], indent=1))
    report = markdown(results, args)
    args.out.write_text(report)
    print(report)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
