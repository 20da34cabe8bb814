"""Governance across slices: a subscription may only name an event its producer publishes, and a
service may only publish events of its own context onto its own bus."""

from __future__ import annotations

from acr.catalog import BY_MODEL
from acr.topology.model import ServiceTopology


def violations(slices: list[ServiceTopology]) -> list[str]:
    """Human-readable problems; empty when the topology is consistent."""
    problems: list[str] = []
    published = {BY_MODEL[m].type: s.service for s in slices for m in s.publishes}
    for s in slices:
        for model in s.publishes:
            if BY_MODEL[model].context != s.context:
                problems.append(
                    f"{s.service} publishes {BY_MODEL[model].type} outside its context {s.context}"
                )
        for sub in s.subscriptions:
            for spec in sub.specs():
                if spec.type not in published:
                    problems.append(
                        f"{s.service}/{sub.queue} subscribes to {spec.type}, which no service publishes"
                    )
                elif published[spec.type] == s.service:
                    problems.append(f"{s.service}/{sub.queue} subscribes to its own event {spec.type}")
    return problems
