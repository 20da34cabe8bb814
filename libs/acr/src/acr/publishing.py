"""Publishing a batch with per-entry outcomes: what was accepted, what may pass later, what never will.

One call, no retries in it: an entry that failed retryably (throttling, an internal error, a transport
failure) is tried again by a later relay round, after a backoff stored on its outbox row (``Backoff``),
so its next send carries the next ``eventcount`` and no outage is too long to wait out. Only entries no
resend can fix are dead letters.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from acr.channels import Channel, TransportError
from acr.unit_of_work import Outgoing

RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailable",
        "Throttled",
        "transport",
    }
)


@dataclass(frozen=True)
class Backoff:
    """How long a row waits after its ``sends``-th send failed retryably: exponential, capped, jittered."""

    base_s: float = 0.25
    max_s: float = 30.0

    def delay(self, sends: int, rng: random.Random) -> float:
        """Equal jitter: uniform in [d/2, d] for d = min(max, base * 2^(sends - 1)), so a long outage is
        retried every max/2..max seconds and relays do not retry in step."""
        step = min(self.max_s, self.base_s * 2 ** max(0, min(sends - 1, 30)))
        return rng.uniform(step / 2, step)


@dataclass(frozen=True)
class DeadLetter:
    outgoing: Outgoing
    error_code: str


@dataclass(frozen=True)
class Retry:
    outgoing: Outgoing
    reason: str


@dataclass
class PublishReport:
    sent: list[Outgoing] = field(default_factory=list)
    retry: list[Retry] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def unanswered(self) -> bool:
        """Nothing was accepted and everything may pass later: the destination is down or throttling."""
        return bool(self.retry) and not self.sent and not self.dead

    def resent(self) -> dict[str, int]:
        """How many entries will be sent again, by reason."""
        reasons: dict[str, int] = {}
        for retry in self.retry:
            reasons[retry.reason] = reasons.get(retry.reason, 0) + 1
        return reasons


def publish(channel: Channel, batch: Sequence[Outgoing]) -> PublishReport:
    """Send ``batch`` (at most ``channel.max_batch``) once and sort each entry: sent, retry or dead."""
    if len(batch) > channel.max_batch:
        raise ValueError(f"batch of {len(batch)} exceeds {channel.max_batch}")
    try:
        results: list[str | None] = channel.send(batch)
    except TransportError:
        results = ["transport"] * len(batch)
    report = PublishReport()
    for outgoing, code in zip(batch, results, strict=True):
        if code is None:
            report.sent.append(outgoing)
        elif code in RETRYABLE:
            report.retry.append(Retry(outgoing, code))
        else:
            report.dead.append(DeadLetter(outgoing, code))
    return report
