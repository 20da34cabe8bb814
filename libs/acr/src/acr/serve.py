"""Run one service: ``python -m acr.serve <service> [--host H] [--port P]``, or ``--probe`` its health.

uvicorn serves the service's app factory (``<module>.main:create_app``), so nothing configures logging
before the app starts. Invalid settings, or a weak secret outside the embedded stack, stop it first, before
anything is touched (exit 2, one line per setting). The service and port default to ``ACR_SERVICE`` and
``ACR_PORT`` (how the one Dockerfile builds every image), else the service's usual port.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request

from acr.settings import SERVICE_PORTS, settings_errors
from acr.topology.services import secret_settings

# The largest websocket message a client may send (the BFF's push socket takes small JSON commands): the
# protocol layer refuses a larger one (close 1009) before buffering it.
WS_MAX_FRAME = 4096


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m acr.serve", description=__doc__)
    parser.add_argument(
        "service", nargs="?", default=os.environ.get("ACR_SERVICE"), choices=list(SERVICE_PORTS)
    )
    parser.add_argument("--host", default=os.environ.get("ACR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACR_PORT", "0")) or None)
    parser.add_argument("--probe", action="store_true", help="exit 0 when its /healthz answers 200")
    args = parser.parse_args(argv)
    if args.service is None:
        parser.error("name the service (or set ACR_SERVICE)")
    args.port = args.port or SERVICE_PORTS[args.service]
    return args


def probe(port: int) -> int:
    """0 when ``/healthz`` on ``port`` answers 200 within 4 s, else 1 (a container health check)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.probe:
        return probe(args.port)
    errors = settings_errors(secret_settings(args.service))  # a bad value, or a weak secret (not embedded)
    if errors:
        print(f"{args.service} refuses to start:", *errors, sep="\n  ", file=sys.stderr)  # noqa: T201
        return 2
    import uvicorn

    uvicorn.run(
        f"{args.service.replace('-', '_')}.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        timeout_graceful_shutdown=3,
        ws_max_size=WS_MAX_FRAME,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
