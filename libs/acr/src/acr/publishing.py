"""Publishing a batch with per-entry outcomes: resend only what failed and may succeed later.

Each resend carries the same event id with ``eventcount`` + 1. Retryable failures back off exponentially
with full jitter within a bounded budget; the rest go to the producer's dead letters.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
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
class RetryPolicy:
    attempts: int = 8
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


@dataclass(frozen=True)
class DeadLetter:
    outgoing: Outgoing
    error_code: str


@dataclass
class PublishReport:
    sent: list[Outgoing] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    resent: dict[str, int] = field(default_factory=dict)

    def count_resend(self, reason: str) -> None:
        self.resent[reason] = self.resent.get(reason, 0) + 1


def publish(
    channel: Channel,
    batch: Sequence[Outgoing],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> PublishReport:
    """Send ``batch`` (at most ``channel.max_batch``) until each entry is accepted or dead."""
    if len(batch) > channel.max_batch:
        raise ValueError(f"batch of {len(batch)} exceeds {channel.max_batch}")
    rng = rng or random.Random()
    report = PublishReport()
    pending = list(batch)
    for attempt in range(policy.attempts):
        if attempt:
            sleep(policy.delay(attempt, rng))
        pending = _send_once(channel, pending, report, last=attempt == policy.attempts - 1)
        if not pending:
            break
    return report


def _send_once(
    channel: Channel, pending: list[Outgoing], report: PublishReport, *, last: bool
) -> list[Outgoing]:
    try:
        results: list[str | None] = channel.send(pending)
    except TransportError:
        results = ["transport"] * len(pending)
    retry: list[Outgoing] = []
    for outgoing, code in zip(pending, results, strict=True):
        if code is None:
            report.sent.append(outgoing)
        elif code in RETRYABLE and not last:
            report.count_resend(code)
            retry.append(Outgoing(outgoing.event.resent(), outgoing.destination, outgoing.group))
        else:
            report.dead.append(DeadLetter(outgoing, code))
    return retry
