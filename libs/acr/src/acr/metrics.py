"""Process-wide counters of the messaging patterns (what ``/ops/stats`` aggregates)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Counters:
    """Thread-safe counters: published, resent by reason, duplicates discarded, stale dropped, parked,
    dead-lettered (of which from an untrusted source),
    outbox rows whose lease another relay took over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._resent: Counter[str] = Counter()
        self.relay_lag_ms: float = 0.0
        self.projection_lag_ms: float = 0.0

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def add_resent(self, reasons: dict[str, int]) -> None:
        with self._lock:
            self._resent.update(reasons)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "published": self._counts["published"],
                "resent": dict(self._resent),
                "duplicatesDiscarded": self._counts["duplicatesDiscarded"],
                "staleDropped": self._counts["staleDropped"],
                "parked": self._counts["parked"],
                "deadLettered": self._counts["deadLettered"],
                "untrustedSources": self._counts["untrustedSources"],
                "consumed": self._counts["consumed"],
                "leaseLost": self._counts["leaseLost"],
                "relayLagMs": round(self.relay_lag_ms, 1),
                "projectionLagMs": round(self.projection_lag_ms, 1),
            }


COUNTERS = Counters()
