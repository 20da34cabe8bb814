"""Fault injection at the adapter boundaries, off unless ``ACR_FAULTS`` names some or a window is open.

``ACR_FAULTS=publish.lost_ack=0.2,deliver.duplicate=0.2 ACR_FAULTS_SEED=7`` makes each named fault happen
with that probability, from a seeded generator, so a chaos run is repeatable. A window (``Faults.open``,
opened at run time through ``POST /v1/ops/faults``) adds a fault at a rate until a moment, on top of those
rates. The same code runs with and without faults: only these few checks differ. Consumer-side faults hit
one message id a bounded number of times, so a healthy message always gets through (and never reaches a
DLQ).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
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
MAX_WINDOW_S = 600.0


class InjectedFault(Exception):
    """A failure that did not really happen: the code under test must cope as if it had."""


def parse(spec: str) -> dict[str, float]:
    """``"a=0.1,b=0.2"`` -> ``{"a": 0.1, "b": 0.2}``; raises ``ValueError`` on unknown names or bad rates."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rate = part.partition("=")
        value = float(rate or "1")
        check(name, value)
        rates[name] = value
    return rates


def check(name: str, rate: float) -> None:
    """Raises ``ValueError`` for an unknown fault name or a rate outside 0..1."""
    if name not in KNOWN:
        raise ValueError(f"unknown fault {name!r}; known: {sorted(KNOWN)}")
    if not 0 <= rate <= 1:
        raise ValueError(f"fault rate of {name} must be within 0..1")


def windows_allowed(aws_endpoint_url: str) -> bool:
    """Fault windows can be opened at run time against an emulator, never in AWS mode (empty endpoint)."""
    return bool(aws_endpoint_url)


@dataclass(frozen=True)
class Window:
    """``fault`` happens at ``rate`` until ``until`` (seconds since the epoch)."""

    fault_id: str
    fault: str
    rate: float
    until: float


@dataclass
class Faults:
    """Seeded coin flips per fault name, and how often each actually happened."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._per_key: Counter[tuple[str, str]] = Counter()
        self._windows: dict[str, Window] = {}

    @classmethod
    def from_spec(cls, spec: str, seed: int) -> Faults:
        return cls(parse(spec), seed)

    @property
    def enabled(self) -> bool:
        """Does ``ACR_FAULTS`` name a fault with a rate above 0?"""
        return any(self.rates.values())

    @property
    def active(self) -> bool:
        """Can a fault happen now (a rate from ``ACR_FAULTS``, or an open window)?"""
        return self.enabled or bool(self.windows())

    def open(self, fault: str, rate: float, seconds: float) -> Window:
        """Make ``fault`` happen at ``rate`` for the next ``seconds`` (1..600), on top of the other rates."""
        check(fault, rate)
        if not 1 <= seconds <= MAX_WINDOW_S:
            raise ValueError(f"a fault window lasts 1..{MAX_WINDOW_S:.0f} s")
        window = Window(f"flt_{uuid.uuid4().hex[:12]}", fault, rate, self.clock() + seconds)
        with self._lock:
            self._windows[window.fault_id] = window
        return window

    def windows(self) -> list[Window]:
        """The windows still open, soonest to close first (closed ones are forgotten)."""
        if not self._windows:
            return []
        now = self.clock()
        with self._lock:
            self._windows = {k: w for k, w in self._windows.items() if w.until > now}
            return sorted(self._windows.values(), key=lambda w: w.until)

    def rate(self, name: str) -> float:
        """The chance of ``name`` now: its ``ACR_FAULTS`` rate and every open window on it, as independent
        causes (``1 - (1 - a)(1 - b)...``)."""
        missing = 1.0 - self.rates.get(name, 0.0)
        for window in self.windows():
            if window.fault == name:
                missing *= 1.0 - window.rate
        return 1.0 - missing

    def hit(self, name: str, key: str | None = None) -> bool:
        """Should ``name`` happen now? With a ``key`` (a message id), at most a few times per key."""
        rate = self.rate(name)
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
