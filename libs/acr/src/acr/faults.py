"""Fault injection at the adapter boundaries, off unless ``ACR_FAULTS`` names some.

``ACR_FAULTS=publish.lost_ack=0.2,deliver.duplicate=0.2 ACR_FAULTS_SEED=7`` makes each named fault happen
with that probability, from a seeded generator, so a chaos run is repeatable. The same code runs with and
without faults: only these few checks differ. Consumer-side faults hit one message id a bounded number of
times, so a healthy message always gets through (and never reaches a DLQ).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

KNOWN = frozenset(
    {
        "publish.lost_ack",
        "publish.partial_failure",
        "publish.throttle",
        "deliver.duplicate",
        "deliver.reorder",
        "consume.crash_before_ack",
        "consume.crash_after_commit",
        "gateway.timeout",
        "gateway.unknown",
        "eventbridge.throttle",
        "sns.failure",
        "uow.crash_before_commit",
        "uow.conflict",
    }
)
MAX_HITS_PER_KEY = 2


class InjectedFault(Exception):
    """A failure that did not really happen: the code under test must cope as if it had."""


def parse(spec: str) -> dict[str, float]:
    """``"a=0.1,b=0.2"`` -> ``{"a": 0.1, "b": 0.2}``; raises ``ValueError`` on unknown names or bad rates."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rate = part.partition("=")
        if name not in KNOWN:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(KNOWN)}")
        value = float(rate or "1")
        if not 0 <= value <= 1:
            raise ValueError(f"fault rate of {name} must be within 0..1")
        rates[name] = value
    return rates


@dataclass
class Faults:
    """Seeded coin flips per fault name, and how often each actually happened."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._per_key: Counter[tuple[str, str]] = Counter()

    @classmethod
    def from_spec(cls, spec: str, seed: int) -> Faults:
        return cls(parse(spec), seed)

    @property
    def enabled(self) -> bool:
        return any(self.rates.values())

    def hit(self, name: str, key: str | None = None) -> bool:
        """Should ``name`` happen now? With a ``key`` (a message id), at most a few times per key."""
        rate = self.rates.get(name, 0.0)
        if rate <= 0:
            return False
        with self._lock:
            if key is not None and self._per_key[(name, key)] >= MAX_HITS_PER_KEY:
                return False
            if self._rng.random() >= rate:
                return False
            if key is not None:
                self._per_key[(name, key)] += 1
            self.injected[name] += 1
            return True

    def pick(self, name: str, count: int) -> set[int]:
        """Which of ``count`` batch entries ``name`` hits."""
        return {i for i in range(count) if self.hit(name)}


NO_FAULTS = Faults()


_PROCESS_FAULTS: Faults | None = None


def process_faults(spec: str, seed: int) -> Faults:
    """The faults of this process (one seeded generator shared by every adapter)."""
    global _PROCESS_FAULTS
    if _PROCESS_FAULTS is None or _PROCESS_FAULTS.rates != parse(spec) or _PROCESS_FAULTS.seed != seed:
        _PROCESS_FAULTS = Faults.from_spec(spec, seed)
    return _PROCESS_FAULTS
