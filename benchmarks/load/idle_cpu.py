"""CPU-seconds per minute and RSS of each process of a running stack, sampled over ``--seconds``.

    .venv/bin/python benchmarks/load/idle_cpu.py [--seconds 60] [--ports '{"emulator": 4566, ...}']

Run it against an idle stack (no rides) to see what the stack costs when nobody uses it.
"""

from __future__ import annotations

import argparse
import json
import time

from processes import FIXED_PORTS, sample, stack_processes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--ports", default="", help="the stack's ports as JSON (default: make run's)")
    args = parser.parse_args()
    pids = stack_processes(json.loads(args.ports) if args.ports else FIXED_PORTS)
    before = {name: sample(pid) for name, pid in pids.items()}
    time.sleep(args.seconds)
    after = {name: sample(pid) for name, pid in pids.items()}
    print("| process | CPU-s per minute | RSS MB |\n|---|---|---|")  # noqa: T201
    total = 0.0
    for name in sorted(pids, key=lambda n: (n != "emulator", n)):
        start, end = before[name], after[name]
        if start is None or end is None:
            continue
        per_minute = (end.cpu_s - start.cpu_s) * 60 / args.seconds
        total += per_minute
        print(f"| {name} | {per_minute:.1f} | {end.rss_mb:.0f} |")  # noqa: T201
    print(f"| all | {total:.1f} | |")  # noqa: T201


if __name__ == "__main__":
    main()
