"""An AWS emulator for integration tests: LocalStack in a container when Docker answers, else a
moto server process on a free port. Never skips: the fallback always exists."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acr_stack.runner import EMULATOR_MODULE, answers, emulator_command, free_port, wait_until

log = logging.getLogger(__name__)
LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"


def docker_available() -> bool:
    """True when a Docker engine answers a ping (fails fast when there is no daemon)."""
    if os.environ.get("ACR_TEST_EMULATOR") == "moto":
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:  # no client library, no socket, no daemon: all mean "no Docker"
        return False


@contextmanager
def emulator_process(
    module: str = EMULATOR_MODULE, *options: str, log_file: Path | None = None
) -> Iterator[tuple[str, int]]:
    """An emulator process on a free loopback port: its endpoint URL and pid; stopped on exit."""
    port = free_port()
    out = log_file.open("ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(emulator_command(port, module, *options), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/moto-api/"), 30, module, lambda: proc.poll() is not None)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_file and not isinstance(out, int):
            out.close()


@contextmanager
def moto_server(log_file: Path | None = None, stream_retention_s: float | None = None) -> Iterator[str]:
    """The embedded emulator (moto's server with ACR's repairs) on a free loopback port; stopped on exit."""
    retention = () if stream_retention_s is None else ("--stream-retention-s", str(stream_retention_s))
    with emulator_process(EMULATOR_MODULE, *retention, log_file=log_file) as (url, _pid):
        yield url


@contextmanager
def localstack() -> Iterator[str]:
    from testcontainers.localstack import LocalStackContainer

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
