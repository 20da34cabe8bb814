"""What ``/metrics`` shows: the counts of ``Counters`` (the same as ``/v1/ops/stats``), the latency
histograms, and the DLQ depths and outbox age read from AWS at scrape time, at most once per TTL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from acr import catalog, clock
from acr.catalog.fleet import NoCarAvailable
from acr.consumer import Handlers, idempotent
from acr.envelope import CloudEvent
from acr.metrics import Counters, MessagingGauges, service_registry
from acr.unit_of_work import Duplicate
from acr_testkit.memory import MemoryUnitOfWork, MessageStore

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(collector: Collector) -> Samples:
    """Every sample of ``collector``, by name and labels, as Prometheus's text parser reads them."""
    text = generate_latest(collector).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_each_count_appears_once_under_its_prometheus_name_and_in_the_snapshot() -> None:
    counters = Counters()
    counters.add("published", 3)
    counters.add("duplicatesDiscarded")
    counters.add("staleDropped", 2)
    counters.add("parked")
    counters.add_resent({"ThrottlingException": 2, "transport": 1})
    counters.dead_lettered("schema_invalid")
    counters.dead_lettered("orphan_update", 2)
    counters.add("trackingConflicts")  # a service's own count: in the snapshot's store only

    samples = scrape(counters.registry)
    assert samples[("acr_events_published_total", ())] == 3
    assert samples[("acr_messages_duplicate_total", ())] == 1
    assert samples[("acr_messages_stale_total", ())] == 2
    assert samples[("acr_messages_parked_total", ())] == 1
    assert samples[("acr_events_resent_total", (("reason", "ThrottlingException"),))] == 2
    assert samples[("acr_events_resent_total", (("reason", "transport"),))] == 1
    assert samples[("acr_messages_dead_lettered_total", (("reason", "schema_invalid"),))] == 1
    assert samples[("acr_messages_dead_lettered_total", (("reason", "orphan_update"),))] == 2
    snapshot = counters.snapshot()
    assert (snapshot["published"], snapshot["deadLettered"], snapshot["parked"]) == (3, 3, 1)
    assert snapshot["resent"] == {"ThrottlingException": 2, "transport": 1}
    assert counters.get("trackingConflicts") == 1


def _buckets(samples: Samples, name: str, **labels: str) -> dict[str, float]:
    wanted = tuple(sorted(labels.items()))
    return {
        dict(key)["le"]: value
        for (sample, key), value in samples.items()
        if sample == f"{name}_bucket" and tuple(kv for kv in key if kv[0] != "le") == wanted
    }


def test_latencies_move_the_buckets_they_fall_in() -> None:
    counters = Counters()
    counters.saga_step("acme.acr.fleet.CarAssigned", 0.3)
    counters.saga_step("acme.acr.fleet.CarAssigned", -0.2)  # a clock a little ahead: no latency
    counters.projection_applied(4.0)
    counters.relay_sent(0.04)

    samples = scrape(counters.registry)
    saga = _buckets(samples, "acr_saga_step_latency_seconds", event_type="acme.acr.fleet.CarAssigned")
    assert (saga["0.01"], saga["0.25"], saga["0.5"], saga["+Inf"]) == (1, 1, 2, 2)
    projection = _buckets(samples, "acr_projection_lag_seconds")
    assert (projection["2.5"], projection["5.0"]) == (0, 1)
    assert samples[("acr_projection_lag_seconds_sum", ())] == 4.0
    relay = _buckets(samples, "acr_outbox_relay_lag_seconds")
    assert (relay["0.025"], relay["0.05"]) == (0, 1)
    assert counters.snapshot()["projectionLagMs"] == 4000.0 and counters.snapshot()["relayLagMs"] == 40.0


def test_the_idempotent_consumer_times_each_step_it_commits_by_event_type() -> None:
    counters, store = Counters(), MessageStore()
    handlers = Handlers[MemoryUnitOfWork]().on(NoCarAvailable, lambda uow, data, event: None)
    handle = idempotent(lambda: MemoryUnitOfWork(store), handlers, counters=counters)
    data = NoCarAvailable(ride_id="ride_1", reason="none free")
    event = catalog.record(data, subject="ride_1")
    late = CloudEvent.model_validate(event.model_dump() | {"time": clock.now() - timedelta(seconds=7)})

    handle(late, data)
    with pytest.raises(Duplicate):  # a second delivery is no step: nothing more is timed
        handle(late.resent(), data)

    samples = scrape(counters.registry)
    key = (("event_type", event.type),)
    assert samples[("acr_saga_step_latency_seconds_count", key)] == 1
    assert samples[("acr_saga_step_latency_seconds_sum", key)] >= 7
    assert _buckets(samples, "acr_saga_step_latency_seconds", event_type=event.type)["5.0"] == 0


class Queues:
    """A service's messaging as a scrape sees it, counting how often AWS would be asked."""

    def __init__(self, *, has_outbox: bool = True) -> None:
        self.has_outbox = has_outbox
        self.depths = {"acr-payment-ride-events-dlq": 2, "acr-payment-producer-dlq": 0}
        self.oldest_ms: float | None = 1500.0
        self.reads = 0
        self.down = False

    def dead_letter_depths(self) -> dict[str, int]:
        self.reads += 1
        if self.down:
            raise ConnectionError("SQS does not answer")
        return dict(self.depths)

    def oldest_pending_ms(self) -> float | None:
        return self.oldest_ms


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_collector_reads_dlq_depths_and_outbox_age_at_most_once_per_ttl() -> None:
    queues, ticks = Queues(), Ticks()
    gauges = MessagingGauges(queues, ttl_s=10, now=ticks)

    first = scrape(gauges)
    assert first[("acr_dlq_messages", (("queue", "acr-payment-ride-events-dlq"),))] == 2
    assert first[("acr_dlq_messages", (("queue", "acr-payment-producer-dlq"),))] == 0
    assert first[("acr_outbox_oldest_pending_age_seconds", ())] == 1.5

    queues.depths["acr-payment-ride-events-dlq"], queues.oldest_ms = 5, None
    ticks.now += 9
    assert scrape(gauges) == first and queues.reads == 1  # a scrape storm is answered from the cache
    ticks.now += 1
    fresh = scrape(gauges)
    assert queues.reads == 2
    assert fresh[("acr_dlq_messages", (("queue", "acr-payment-ride-events-dlq"),))] == 5
    assert fresh[("acr_outbox_oldest_pending_age_seconds", ())] == 0  # none pending


def test_a_failed_reading_leaves_the_gauges_out_and_is_tried_again_next_scrape() -> None:
    queues, ticks = Queues(), Ticks()
    gauges = MessagingGauges(queues, ttl_s=10, now=ticks)
    queues.down = True
    assert scrape(gauges) == {}
    queues.down = False
    assert ("acr_dlq_messages", (("queue", "acr-payment-producer-dlq"),)) in scrape(gauges)
    assert queues.reads == 2


def test_a_service_registry_names_the_service_and_has_no_outbox_age_without_an_outbox() -> None:
    counters = Counters()
    counters.add("published")
    samples = scrape(service_registry("reward", Queues(has_outbox=False), counters))
    assert samples[("acr_service_info", (("service", "reward"),))] == 1
    assert samples[("acr_events_published_total", ())] == 1
    assert ("acr_dlq_messages", (("queue", "acr-payment-producer-dlq"),)) in samples
    assert not any(name == "acr_outbox_oldest_pending_age_seconds" for name, _ in samples)
    assert not any(name.startswith("acr_dlq") for name, _ in scrape(service_registry("bff", None, counters)))
