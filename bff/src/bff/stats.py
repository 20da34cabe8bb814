"""``/ops/stats``: every service's messaging counters and their totals."""

from __future__ import annotations

from typing import Any

from bff.ports import Json

COUNTER_DEFAULTS: Json = {
    "published": 0,
    "resent": {},
    "duplicatesDiscarded": 0,
    "staleDropped": 0,
    "parked": 0,
    "dlq": {},
    "relayLagMs": 0.0,
    "projectionLagMs": 0.0,
    "projectionP50LagMs": 0.0,  # of the events applied in the last minutes (the worst read model's)
    "projectionP99LagMs": 0.0,
}
UNAVAILABLE: Json = {"error": "unavailable"}
GAUGES = frozenset({"oldestPendingMs"})  # the age of a service's oldest pending outbox row (null: none)


def _merge(total: Json, key: str, value: Any) -> None:
    if isinstance(value, dict):
        bucket = total.setdefault(key, {})
        if isinstance(bucket, dict):
            for name, n in value.items():
                if isinstance(n, int | float) and not isinstance(n, bool):
                    bucket[name] = bucket.get(name, 0) + n
    elif isinstance(value, int | float) and not isinstance(value, bool):
        current = total.get(key, 0)
        if not isinstance(current, int | float):
            return
        # Lags and ages are gauges: the worst one is the system's; everything else is a count.
        total[key] = max(current, value) if key in GAUGES or key.endswith("LagMs") else current + value


def totals(services: dict[str, Json]) -> Json:
    """Sum the counts, merge ``resent`` and ``dlq`` by key, keep the maximum of each lag and age (a null
    age counts for nothing); services that did not answer are left out."""
    total: Json = {k: (dict(v) if isinstance(v, dict) else v) for k, v in COUNTER_DEFAULTS.items()}
    for counters in services.values():
        if "error" in counters:
            continue
        for key, value in counters.items():
            _merge(total, key, value)
    return total


def aggregate(services: dict[str, Json]) -> Json:
    """The ``/ops/stats`` body."""
    return {"services": services, "totals": totals(services)}
