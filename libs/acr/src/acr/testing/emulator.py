"""An AWS emulator for integration tests: LocalStack in a container when Docker answers, else a
moto server process on a free port. Never skips: the fallback always exists."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acr.stack.runner import answers, free_port, wait_until

log = logging.getLogger(__name__)
LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"


def docker_available() -> bool:
    """True when a Docker engine answers a ping (fails fast when there is no daemon)."""
    if os.environ.get("ACR_TEST_EMULATOR") == "moto":
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:  # no client library, no socket, no daemon: all mean "no Docker"
        return False


@contextmanager
def moto_server(log_file: Path | None = None, stream_retention_s: float | None = None) -> Iterator[str]:
    """The embedded emulator (moto's server with ACR's repairs) on a free loopback port; stopped on exit."""
    port = free_port()
    out = log_file.open("ab") if log_file else subprocess.DEVNULL
    retention = [] if stream_retention_s is None else ["--stream-retention-s", str(stream_retention_s)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "acr.stack.emulator", *retention, "-H", "127.0.0.1", "-p", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/moto-api/"), 30, "moto server", lambda: proc.poll() is not None)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_file and not isinstance(out, int):
            out.close()


@contextmanager
def localstack() -> Iterator[str]:
    from testcontainers.localstack import LocalStackContainer  # type: ignore[import-untyped]

    with LocalStackContainer(image=LOCALSTACK_IMAGE) as container:
        yield str(container.get_url())


@contextmanager
def aws_emulator() -> Iterator[str]:
    """The endpoint URL of a fresh emulator: LocalStack if Docker answers, else moto."""
    if docker_available():
        log.info("Docker answers: using %s", LOCALSTACK_IMAGE)
        with localstack() as url:
            yield url
    else:
        log.info("no Docker engine: using a moto server process")
        with moto_server() as url:
            yield url
