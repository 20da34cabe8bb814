"""On AWS the relay's backlog is a CloudWatch metric the exported alarms watch; embedded stacks skip it."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from acr.loops import Loops
from acr.outbox_metric import METRIC, NAMESPACE, OutboxAgeMetric
from acr.runtime import Messaging
from acr.settings import Settings
from acr_testkit.aws import client, in_process_messaging
from reward.topology import TOPOLOGY


def _points(cloudwatch: Any) -> list[dict[str, Any]]:
    metrics = cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=METRIC)["Metrics"]
    return [m["Dimensions"][0] for m in metrics]


def test_the_oldest_pending_age_is_put_in_seconds_and_zero_when_nothing_is_pending() -> None:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        ages = iter([12_500.0, None])
        metric = OutboxAgeMetric(cloudwatch, "reward", lambda: next(ages))
        assert metric.put_once() == 12.5
        assert metric.put_once() == 0.0
        assert _points(cloudwatch) == [{"Name": "Service", "Value": "reward"}]


def test_messaging_puts_the_metric_on_aws_only() -> None:
    with in_process_messaging(TOPOLOGY):  # AWS mode: no endpoint
        loops = Loops()
        Messaging(TOPOLOGY, Settings(aws_endpoint_url=""), loops, make_client=client)
        assert "outbox-age-metric" in loops.names
        embedded = Loops()
        Messaging(TOPOLOGY, Settings(aws_endpoint_url="http://127.0.0.1:4566"), embedded, make_client=client)
        assert "outbox-age-metric" not in embedded.names and "relay" in embedded.names
