"""``make load``: run the rider load profile (``locustfile.py``) headless against a BFF and print the report.

    .venv/bin/python benchmarks/load/run_load.py --bff http://127.0.0.1:8000 --rate 20 --minutes 10

Riders default to three per ride a minute (a rider has one ride at a time, and a ride in the full city
takes one to three minutes at ``ACR_SIM_SPEED=30``). Rides still under way when the time is up are
followed to their end (up to ``--ride-timeout-s``) before the report is written. ``--ports`` names the
stack's ports as JSON when it is not ``make run``'s (for the process and emulator figures). Every rider
signs up from this one address: start the stack with ``ACR_SIGNUP_BURST`` above the rider count (e.g.
``ACR_SIGNUP_BURST=10000 make run``), or sign-ups past the shipped burst get 429.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bff", default="http://127.0.0.1:8000")
    parser.add_argument("--rate", type=float, default=20, help="rides booked per minute, all riders together")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--riders", type=int, default=0, help="default: 3 x rate")
    parser.add_argument("--cancel", type=float, default=0.05, help="share of rides cancelled once assigned")
    parser.add_argument("--ride-timeout-s", type=float, default=600)
    parser.add_argument("--ports", default="", help='e.g. {"emulator": 4566, "bff": 8000, ...}')
    parser.add_argument("--out", type=Path, default=Path(".run/load/load"), help="report path, no suffix")
    args = parser.parse_args()
    riders = args.riders or max(5, round(3 * args.rate))
    env = os.environ | {
        "LOAD_RATE": str(args.rate),
        "LOAD_CANCEL": str(args.cancel),
        "LOAD_RIDE_TIMEOUT_S": str(args.ride_timeout_s),
        "LOAD_OUT": str(args.out.resolve()),
        "LOAD_PORTS": args.ports,
    }
    command = [
        sys.executable, "-m", "locust",
        "-f", str(HERE / "locustfile.py"),
        "--headless", "--only-summary",
        "--host", args.bff,
        "--users", str(riders),
        "--spawn-rate", str(max(1, riders // 10)),
        "--run-time", f"{int(args.minutes * 60)}s",
        "--stop-timeout", str(int(args.ride_timeout_s)),
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    print(
        f"{riders} riders booking {args.rate:g} rides/min for {args.minutes:g} min at {args.bff}", flush=True
    )  # noqa: T201
    code = subprocess.call(command, env=env, cwd=HERE)
    report = args.out.with_suffix(".md")
    if report.exists():
        print(report.read_text())  # noqa: T201
        print(f"(also {report} and {args.out.with_suffix('.json')})")  # noqa: T201
    return code


if __name__ == "__main__":
    raise SystemExit(main())
