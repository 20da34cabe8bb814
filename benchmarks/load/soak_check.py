"""Judge a long load run (the JSON that ``run_load.py`` wrote): did the stack hold the load to the end?

    .venv/bin/python benchmarks/load/soak_check.py .run/load/load.json [--early 2-6] [--late 5]

Prints the share of rides booked before the last three minutes that reached PAID (rides the rider
cancelled excluded), dispatch and book→PAID p50/p99 of the early window (minutes 2–6) and of the last
``--late`` minutes with their ratio, and the emulator's RSS at the end and its range over the last ten
minutes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def window(rides: list[dict[str, Any]], first: int, last: int, key: str) -> list[float]:
    """Latencies ``key`` of the rides booked in minutes ``first``..``last`` (1-based, inclusive)."""
    return [r[key] for r in rides if first <= r["minute"] + 1 <= last and r[key] is not None]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("summary", type=Path)
    parser.add_argument("--early", default="2-6", help="the reference minutes, e.g. 2-6")
    parser.add_argument("--late", type=int, default=5, help="how many of the last booking minutes to judge")
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text())
    rides = list(summary["rides"].values())
    booking_minutes = max(m["minute"] for m in summary["minutes"] if m["booked"])
    early_from, early_to = (int(x) for x in args.early.split("-"))
    late_from = booking_minutes - args.late + 1

    judged = [
        r
        for r in rides
        if r["minute"] + 1 <= booking_minutes - 3 and r["end"] != "CANCELLED (RIDER_CANCELLED)"
    ]
    paid = sum(r["end"] == "PAID" for r in judged)
    judged_minutes = f"1-{booking_minutes - 3}"
    print(f"rides booked in minutes {judged_minutes} (rider cancels excluded): {len(judged)}, PAID {paid}")  # noqa: T201
    not_paid: dict[str, int] = {}
    for r in judged:
        if r["end"] != "PAID":
            not_paid[str(r["end"])] = not_paid.get(str(r["end"]), 0) + 1
    print(f"  not PAID: {not_paid or 'none'}")  # noqa: T201
    for key, name in (("dispatch_s", "dispatch"), ("paid_s", "book→PAID")):
        early = window(rides, early_from, early_to, key)
        late = window(rides, late_from, booking_minutes, key)
        if not early or not late:
            continue
        e50, e99, l50, l99 = (
            percentile(early, 0.5),
            percentile(early, 0.99),
            percentile(late, 0.5),
            percentile(late, 0.99),
        )
        print(  # noqa: T201
            f"{name}: minutes {early_from}-{early_to} p50 {e50:.2f} s p99 {e99:.2f} s ({len(early)} rides); "
            f"minutes {late_from}-{booking_minutes} p50 {l50:.2f} s p99 {l99:.2f} s ({len(late)} rides); "
            f"ratio p50 {l50 / e50:.2f}x, p99 {l99 / e99:.2f}x"
        )
    rss = [m["rss_mb"].get("emulator") for m in summary["minutes"] if m["rss_mb"].get("emulator")]
    if rss:
        tail = rss[-10:]
        print(f"emulator RSS: end {rss[-1]} MB; last {len(tail)} minutes {min(tail)}–{max(tail)} MB")  # noqa: T201


if __name__ == "__main__":
    main()
