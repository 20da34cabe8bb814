"""``python -m acr_city prepare``: build a generated city into the cache unless it is there already.

``acr-stack run`` calls it before it starts the services, so the city is built once, with progress on
the terminal, instead of by every service at the same time. Defaults come from the services' own
settings (``ACR_CITY``, ``ACR_SEED``, ``ACR_CITY_CACHE_DIR``).
"""

from __future__ import annotations

import argparse
import os
import sys

from .city import prepare_city


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acr_city", description=__doc__)
    parser.add_argument("command", choices=["prepare"])
    parser.add_argument(
        "--spec", default=os.environ.get("ACR_CITY", "small"), help="small, full or osm:<file>"
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("ACR_SEED", "42")))
    parser.add_argument("--cache-dir", default=os.environ.get("ACR_CITY_CACHE_DIR"))
    args = parser.parse_args(argv)
    if args.spec.startswith("osm:"):
        print(f"{args.spec} is read by each service at start; nothing to prepare", flush=True)  # noqa: T201
        return 0
    try:
        prepare_city(args.spec, args.seed, args.cache_dir, lambda line: print(line, flush=True))  # noqa: T201
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
