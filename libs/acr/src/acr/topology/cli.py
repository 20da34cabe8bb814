"""``acr-topology apply|check|show``: apply every installed service's slice to the configured endpoint."""

from __future__ import annotations

import argparse
import json
import sys

from acr import aws
from acr.settings import get_settings
from acr.topology.apply import Clients, apply
from acr.topology.governance import violations
from acr.topology.model import discover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acr-topology", description=__doc__)
    parser.add_argument("command", choices=["apply", "check", "show"])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    slices = discover()
    problems = violations(slices)
    if problems:
        print("topology governance failed:\n  " + "\n  ".join(problems), file=sys.stderr)  # noqa: T201
        return 1
    if args.command == "show":
        print(json.dumps([_describe(s) for s in slices], indent=2))  # noqa: T201
        return 0
    if args.command == "apply":
        settings = get_settings()
        lines = apply(slices, Clients(lambda name: aws.client(name, settings)), settings.max_receives)
        if not args.quiet:
            target = settings.aws_endpoint_url or "AWS"
            print(f"topology applied to {target}: {len(slices)} services, {len(lines)} resources")  # noqa: T201
    return 0


def _describe(s: object) -> dict[str, object]:
    from acr.topology.model import ServiceTopology

    assert isinstance(s, ServiceTopology)
    return {
        "service": s.service,
        "bus": s.bus,
        "publishes": [m.__name__ for m in s.publishes],
        "queues": [q for q, _, _ in s.all_queues()],
        "tables": [t.name for t in s.all_tables()],
        "topics": list(s.topics),
        "streams": [st.name for st in s.streams],
    }


if __name__ == "__main__":
    raise SystemExit(main())
