"""Every service's ``/metrics`` parses with Prometheus's text-format parser (#16), and after one ride to PAID
shows what the ride did: events published, saga steps timed, the ride history projected, DLQ depths."""

from __future__ import annotations

import random

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from rider_client import Rider, book_ride

from acr.settings import SERVICE_PORTS
from acr_stack import Stack

pytestmark = pytest.mark.system

EVERY_PROCESS = {  # what the kernel's registry has in every service, whatever it does
    "acr_service_info",
    "acr_events_published",
    "acr_events_resent",
    "acr_messages_duplicate",
    "acr_messages_stale",
    "acr_messages_parked",
    "acr_messages_dead_lettered",
    "acr_outbox_relay_lag_seconds",
    "acr_projection_lag_seconds",
    "acr_saga_step_latency_seconds",
    "process_resident_memory_bytes",
}
WITHOUT_MESSAGING = {"address-finder"}  # answers queries only: no queue, no DLQ, no outbox
# Each consumes some of a ride's events through the kernel's idempotent consumer (the BFF pushes them).
CONSUMERS = ("ride-manager", "car-dispatcher", "car-simulator", "payment", "reward", "bff")


def scrape(stack: Stack, service: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{stack.config.url(service)}/metrics", headers=headers, timeout=20)


def families(stack: Stack, service: str) -> dict[str, Metric]:
    """``service``'s metrics, scraped as Prometheus does (the ops token as a bearer token) and parsed."""
    token = stack.config.service_env(service)["ACR_OPS_TOKEN"]
    answer = scrape(stack, service, {"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def value(family: Metric, sample: str, **labels: str) -> float:
    """The sum of ``sample``'s values over the samples carrying ``labels``."""
    return sum(s.value for s in family.samples if s.name == sample and labels.items() <= s.labels.items())


@pytest.fixture(scope="module")
def after_one_paid_ride(stack: Stack, bff_url: str) -> dict[str, dict[str, Metric]]:
    rider = Rider.sign_up(bff_url, "Metrics")
    ride = book_ride(rider, random.Random(1604))
    rider.wait_for(  # the points come last: reward has handled the ride's payment then
        ride["rideId"],
        lambda r: r["status"] == "PAID" and r["pointsEarned"] is not None,
        timeout_s=240,
        what="PAID with points",
    )
    return {service: families(stack, service) for service in SERVICE_PORTS}


def test_every_services_metrics_parse_and_have_the_kernels_families(
    after_one_paid_ride: dict[str, dict[str, Metric]],
) -> None:
    for service, found in after_one_paid_ride.items():
        assert EVERY_PROCESS <= set(found), (service, EVERY_PROCESS - set(found))
        assert [s.labels["service"] for s in found["acr_service_info"].samples] == [service]
        if service not in WITHOUT_MESSAGING:
            depths = {s.labels["queue"]: s.value for s in found["acr_dlq_messages"].samples}
            assert depths and all(q.startswith(f"acr-{service}-") for q in depths), (service, depths)


def test_the_ride_shows_in_the_counts_and_the_histograms(
    after_one_paid_ride: dict[str, dict[str, Metric]],
) -> None:
    ride_manager = after_one_paid_ride["ride-manager"]
    assert value(ride_manager["acr_events_published"], "acr_events_published_total") > 0
    assert value(ride_manager["acr_outbox_relay_lag_seconds"], "acr_outbox_relay_lag_seconds_count") > 0
    assert value(ride_manager["acr_projection_lag_seconds"], "acr_projection_lag_seconds_count") > 0
    assert (
        value(ride_manager["acr_outbox_oldest_pending_age_seconds"], "acr_outbox_oldest_pending_age_seconds")
        >= 0
    )
    for service in CONSUMERS:
        steps = after_one_paid_ride[service]["acr_saga_step_latency_seconds"]
        assert value(steps, "acr_saga_step_latency_seconds_count") > 0, service
        assert value(steps, "acr_saga_step_latency_seconds_bucket", le="+Inf") == value(
            steps, "acr_saga_step_latency_seconds_count"
        )
        types = {s.labels["event_type"] for s in steps.samples if "event_type" in s.labels}
        assert types and all(t.startswith("acme.acr.") for t in types), (service, types)  # never a ride id


def test_metrics_refuse_a_scraper_without_the_ops_token(stack: Stack) -> None:
    for service in ("bff", "payment"):
        assert scrape(stack, service, {}).status_code == 401
        assert scrape(stack, service, {"Authorization": "Bearer a-guess"}).status_code == 401
