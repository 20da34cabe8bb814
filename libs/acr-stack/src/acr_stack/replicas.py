"""``ACR_REPLICAS``: how many processes of each service the embedded stack runs.

``2`` runs two of every service, ``bff=3,route-monitor=2`` three BFFs and two route-monitors (one of the
rest), ``2,bff=3`` two of everything but three BFFs. Empty: one of each, the stack as it always was.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

MAX_REPLICAS = 16  # a typo (20 for 2) would start hundreds of processes on a laptop


@dataclass(frozen=True)
class Replica:
    """One process of a service: its name (the process's ``ACR_REPLICA``, and how ``Stack.kill`` names
    it) and its own port. A service run once keeps its name and its usual port."""

    service: str
    name: str
    port: int


def parse_replicas(text: str, services: Collection[str]) -> dict[str, int]:
    """Replicas per service; ``ValueError`` saying what is wrong with ``text``."""
    default: int | None = None
    overrides: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part and text.strip():
            raise ValueError("an empty item (two commas, or a comma at an end)")
        if not part:
            continue
        service, eq, count = part.rpartition("=")
        if not eq:
            if default is not None:
                raise ValueError(f"two defaults ({default} and {part})")
            default = _count(part)
        elif service.strip() not in services:
            raise ValueError(f"unknown service {service.strip()!r} (one of {', '.join(sorted(services))})")
        elif service.strip() in overrides:
            raise ValueError(f"{service.strip()} given twice")
        else:
            overrides[service.strip()] = _count(count.strip())
    return {service: overrides.get(service, default or 1) for service in services}


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICAS:
        raise ValueError(f"{text!r} is not a number of replicas (1..{MAX_REPLICAS})")
    return int(text)


def replica_names(service: str, count: int) -> list[str]:
    """``route-monitor-1``, ``route-monitor-2``...; a service run once is named as the service."""
    return [service] if count == 1 else [f"{service}-{n}" for n in range(1, count + 1)]
