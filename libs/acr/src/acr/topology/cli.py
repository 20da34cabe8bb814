"""``acr-topology apply|check|show|export``: apply every installed service's slice to the configured endpoint,
check governance (and, with ``--schemas``, the schema gate), show the slices, or export the deployable
templates, AsyncAPI document and schema registry (docs/deploy.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from acr import aws
from acr.settings import get_settings
from acr.topology.apply import Clients, apply
from acr.topology.export import export
from acr.topology.governance import violations
from acr.topology.model import discover
from acr.topology.schemas import GateFailed, gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acr-topology", description=__doc__)
    parser.add_argument("command", choices=["apply", "check", "show", "export"])
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("deploy"), help="export: where the templates go")
    parser.add_argument(
        "--schemas",
        type=Path,
        default=None,
        help="the schema registry folder (export: default schemas; check: gate the catalog against it)",
    )
    args = parser.parse_args(argv)
    slices = discover()
    problems = violations(slices)
    if args.command == "check" and args.schemas is not None:
        problems += gate(args.schemas)
    if problems:
        print("topology governance failed:\n  " + "\n  ".join(problems), file=sys.stderr)  # noqa: T201
        return 1
    if args.command == "export":
        return _export(args.out, args.schemas or Path("schemas"), quiet=args.quiet)
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


def _export(out: Path, registry: Path, *, quiet: bool) -> int:
    try:
        written = export(out, registry)
    except GateFailed as failed:
        print("export refused:\n  " + "\n  ".join(failed.problems), file=sys.stderr)  # noqa: T201
        return 1
    if not quiet:
        print(f"exported {len(written)} files to {out} and {registry}")  # noqa: T201
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
