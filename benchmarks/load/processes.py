"""CPU and memory of the stack's processes, read from /proc: the emulator and each service, found by
their command lines (so it works for ``make run`` and for a test stack alike)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from acr.settings import SERVICE_PORTS

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FIXED_PORTS = {"emulator": 4566} | SERVICE_PORTS  # make run's


@dataclass(frozen=True)
class Sample:
    cpu_s: float
    rss_mb: float


def stack_processes(ports: dict[str, int] | None = None) -> dict[str, int]:
    """name -> pid of the emulator and each service, found by the port on their command line
    (``make run``'s fixed ports unless ``ports`` says otherwise)."""
    wanted = {str(port): name for name, port in (ports or FIXED_PORTS).items()}
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(a in ("moto.server", "acr_stack.emulator", "uvicorn", "acr.serve") for a in argv):
            continue
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag in ("-p", "--port") and value in wanted:
                found[wanted[value]] = int(entry.name)
    return found


def sample(pid: int) -> Sample | None:
    """CPU seconds used so far (user + system) and resident memory of one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return Sample(cpu_s, rss_kb / 1024)
