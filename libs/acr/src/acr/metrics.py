"""Process-wide counters of the messaging patterns: what ``/v1/ops/stats`` reports (and the BFF's
``/ops/stats`` aggregates), and the same counts, with latency histograms, in Prometheus form for
``/metrics``.

Each count is made by one call (``add``, ``add_resent``, ``dead_lettered``...), which updates both the
snapshot's counter and the Prometheus metric, so the two cannot disagree. The Prometheus metrics live in a
registry of the ``Counters`` object (the process's one is ``COUNTERS``), not in prometheus_client's global
default: a test makes a fresh ``Counters`` without clashing names, and nothing a library registers by
itself ends up on ``/metrics``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Seconds, from a hop (tens of ms) to a message parked a few times or a backlog after an outage (minutes).
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


LAG_WINDOW_S = 300.0  # the p50/p99 of /ops/stats are of the events applied in the last five minutes
LAG_WINDOW_MAX = 4096  # and of at most this many of them, the newest


class LagWindow:
    """The lags of the events a read model applied recently, for percentiles (the histogram's buckets are
    too coarse for a p99 an operator can act on, and never forget)."""

    def __init__(self, window_s: float = LAG_WINDOW_S, max_samples: int = LAG_WINDOW_MAX) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, lag_ms: float, now: float) -> None:
        self._samples.append((now, max(0.0, lag_ms)))

    def percentiles(self, now: float) -> dict[str, float | None]:
        """``{"p50", "p99"}`` in ms by the nearest rank; None when nothing was applied in the window."""
        while self._samples and self._samples[0][0] < now - self._window_s:
            self._samples.popleft()
        lags = sorted(lag for _, lag in self._samples)
        if not lags:
            return {"p50": None, "p99": None}
        return {
            q: round(lags[max(0, math.ceil(p * len(lags)) - 1)], 1) for q, p in (("p50", 0.5), ("p99", 0.99))
        }


class Counters:
    """Thread-safe counters: published, resent by reason, duplicates discarded, stale dropped, parked,
    expired (discarded, or applied late), expired items swept, dead-lettered (of which from an untrusted
    source), outbox rows whose lease another relay took over,
    and any other count a service keeps under a name of its own (``add``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Tally[str] = Tally()
        self._resent: Tally[str] = Tally()
        self.relay_lag_ms: float = 0.0
        self.projection_lag_ms: float = 0.0
        self._lags: dict[str, LagWindow] = {}
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        r = self.registry
        self._prometheus = {
            "published": Counter(
                "acr_events_published", "Outbox entries accepted by a bus or topic", registry=r
            ),
            "duplicatesDiscarded": Counter(
                "acr_messages_duplicate", "Deliveries whose consumed-marker already existed", registry=r
            ),
            "staleDropped": Counter(
                "acr_messages_stale", "Updates older than what was applied, dropped", registry=r
            ),
            "parked": Counter(
                "acr_messages_parked",
                "Updates tried again later: what they update is not there yet",
                registry=r,
            ),
            "swept": Counter(
                "acr_items_swept", "Expired items deleted where DynamoDB TTL does not run", registry=r
            ),
        }
        self._expired_total = Counter(
            "acr_messages_expired",
            "Discardable messages older than their type's time-to-live, acknowledged unhandled, by type",
            ["event_type"],
            registry=r,
        )
        self._resent_total = Counter(
            "acr_events_resent", "Outbox entries to send again, by reason", ["reason"], registry=r
        )
        self._dead_lettered_total = Counter(
            "acr_messages_dead_lettered",
            "Poison and orphan messages (consumer) and dead outbox entries (relay), by reason",
            ["reason"],
            registry=r,
        )
        self._relay_lag = Histogram(
            "acr_outbox_relay_lag_seconds",
            "Outbox row recorded -> accepted by its bus or topic",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._projection_lag = Histogram(
            "acr_projection_lag_seconds",
            "Event time -> applied to a read model",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._saga_step = Histogram(
            "acr_saga_step_latency_seconds",
            "Event time of the causing event -> its handler's unit of work committed, by event type",
            ["event_type"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
        if name in self._prometheus:
            self._prometheus[name].inc(n)

    def add_resent(self, reasons: dict[str, int]) -> None:
        with self._lock:
            self._resent.update(reasons)
        for reason, n in reasons.items():
            self._resent_total.labels(reason=reason).inc(n)

    def dead_lettered(self, reason: str, n: int = 1) -> None:
        """``n`` messages or outbox entries sent to a DLQ for ``reason`` (a poison reason or an error code:
        a short fixed set, so a bounded label)."""
        with self._lock:
            self._counts["deadLettered"] += n
        self._dead_lettered_total.labels(reason=reason).inc(n)

    def expired(self, event_type: str) -> None:
        """One message of ``event_type`` (a discardable type of the catalog: a bounded label) dropped because
        it outlived its time-to-live."""
        with self._lock:
            self._counts["expiredDiscarded"] += 1
        self._expired_total.labels(event_type=event_type).inc()

    def relay_sent(self, lag_s: float) -> None:
        """One outbox row sent ``lag_s`` after it was recorded."""
        self.relay_lag_ms = lag_s * 1000
        self._relay_lag.observe(max(0.0, lag_s))

    def projection_applied(self, lag_s: float, projection: str | None = None) -> None:
        """One event applied to a read model ``lag_s`` after its time (the read model named, for its
        percentiles)."""
        self.projection_lag_ms = lag_s * 1000
        self._projection_lag.observe(max(0.0, lag_s))
        if projection is not None:
            with self._lock:
                window = self._lags.setdefault(projection, LagWindow())
                window.add(lag_s * 1000, time.monotonic())

    def projection_lag(self, projection: str) -> dict[str, float | None]:
        """The p50 and p99 (ms) of the lags of ``projection``'s recent events."""
        with self._lock:
            window = self._lags.get(projection)
            return window.percentiles(time.monotonic()) if window else {"p50": None, "p99": None}

    def _projection_lags(self) -> dict[str, float]:
        """The worst p50 and p99 of this process's read models (caller holds the lock)."""
        now = time.monotonic()
        found = [w.percentiles(now) for w in self._lags.values()]
        return {
            f"projection{q.upper()}LagMs": max((p[q] or 0.0 for p in found), default=0.0)
            for q in ("p50", "p99")
        }

    def saga_step(self, event_type: str, latency_s: float) -> None:
        """One event of ``event_type`` handled (committed) ``latency_s`` after its time. Hosts' clocks may
        differ by a little: a negative latency counts as none."""
        self._saga_step.labels(event_type=event_type).observe(max(0.0, latency_s))

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
                "expiredDiscarded": self._counts["expiredDiscarded"],
                "lateApplied": self._counts["lateApplied"],
                "swept": self._counts["swept"],
                "deadLettered": self._counts["deadLettered"],
                "untrustedSources": self._counts["untrustedSources"],
                "consumed": self._counts["consumed"],
                "leaseLost": self._counts["leaseLost"],
                "relayLagMs": round(self.relay_lag_ms, 1),
                "projectionLagMs": round(self.projection_lag_ms, 1),
                **self._projection_lags(),
            }


COUNTERS = Counters()


class QueueGauges(Protocol):
    """What a scrape asks of a service's messaging (``acr.runtime.Messaging``)."""

    @property
    def has_outbox(self) -> bool: ...

    def dead_letter_depths(self) -> dict[str, int]: ...

    def oldest_pending_ms(self) -> float | None: ...


GAUGES_TTL_S = 10.0  # Prometheus scrapes every 15 s or so; more often than this, AWS is not asked again


class MessagingGauges:
    """A collector of what only AWS knows, read when Prometheus scrapes: each DLQ's depth and the age of
    the oldest pending outbox row. The readings are kept ``ttl_s``, so that a storm of scrapes (several
    Prometheus servers, a person reloading) costs at most one round of calls per ``ttl_s``. A reading that
    fails leaves these families out of the scrape (Prometheus then sees them absent), never the rest."""

    def __init__(
        self, messaging: QueueGauges, ttl_s: float = GAUGES_TTL_S, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._messaging = messaging
        self._ttl_s = ttl_s
        self._now = now
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._depths: dict[str, int] = {}
        self._oldest_ms: float | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self._read():
            return
        depth = GaugeMetricFamily(
            "acr_dlq_messages", "Messages waiting in a dead-letter queue of this service", labels=["queue"]
        )
        for queue, messages in sorted(self._depths.items()):
            depth.add_metric([queue], messages)
        yield depth
        if not self._messaging.has_outbox:
            return
        yield GaugeMetricFamily(
            "acr_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet published (0 when none is pending)",
            value=(self._oldest_ms or 0.0) / 1000,
        )

    def _read(self) -> bool:
        """Fresh readings (from AWS at most once per ``ttl_s``); False when AWS could not be read."""
        with self._lock:
            if self._read_at is not None and self._now() - self._read_at < self._ttl_s:
                return True
            try:
                self._depths = self._messaging.dead_letter_depths()
                self._oldest_ms = self._messaging.oldest_pending_ms() if self._messaging.has_outbox else None
            except Exception:
                log.warning("the DLQ depths and outbox age could not be read for /metrics", exc_info=True)
                self._read_at = None
                return False
            self._read_at = self._now()
            return True


class ServiceInfo:
    """``acr_service_info{service} 1``: which service a scrape came from (the process itself is the target's
    ``instance``; a replica label would start a new series at every restart)."""

    def __init__(self, service: str) -> None:
        self._service = service

    def collect(self) -> Iterator[InfoMetricFamily]:
        yield InfoMetricFamily("acr_service", "The service this process is", value={"service": self._service})


def service_registry(
    service: str, messaging: QueueGauges | None, counters: Counters | None = None
) -> CollectorRegistry:
    """What one service's ``/metrics`` shows: the process's counters and histograms, which service it is,
    and, with a messaging slice, its DLQ depths and outbox age."""
    registry = CollectorRegistry()
    collectors: list[Collector] = [(counters or COUNTERS).registry, ServiceInfo(service)]
    if messaging is not None:
        collectors.append(MessagingGauges(messaging))
    for collector in collectors:
        registry.register(collector)
    return registry
