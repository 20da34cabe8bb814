"""``python -m acr.rebuild <name> [--no-wait]``: rebuild a read model (``ride-history``...) from the archive.

It asks the BFF (``POST /ops/projections/{name}/rebuild`` with ``ACR_OPS_TOKEN``), the same way an operator's
dashboard does, so whichever replica of the owning service answers runs the rebuild; then it follows
``GET /ops/projections`` until the read model is LIVE again and prints its last rebuild.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import httpx

from acr.settings import get_settings

POLL_S = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acr.rebuild", description=__doc__)
    parser.add_argument("name", help="the read model, as GET /ops/projections lists it")
    parser.add_argument("--no-wait", action="store_true", help="only start it")
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    settings = get_settings()
    ops = httpx.Client(
        base_url=f"{settings.service_url('bff')}/ops", headers={"X-Ops-Token": settings.ops_token}, timeout=20
    )
    started = ops.post(f"/projections/{args.name}/rebuild")
    if started.status_code != 202:
        print(started.text, file=sys.stderr)  # noqa: T201
        return 1
    deadline = time.monotonic() + args.timeout_s
    while not args.no_wait:
        state = next(p for p in ops.get("/projections").json()["projections"] if p["name"] == args.name)
        if state["state"] == "LIVE":
            print(json.dumps(state, indent=2))  # noqa: T201
            return 0 if (state["lastRebuild"] or {}).get("status") == "COMPLETED" else 1
        if time.monotonic() > deadline:
            print(f"{args.name} is still rebuilding", file=sys.stderr)  # noqa: T201
            return 1
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
