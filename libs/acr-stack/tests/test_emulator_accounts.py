"""The emulator's accounts (``--accounts``): a service's key is in its account, a stream or topic of another
account named by ARN is found there, and SNS delivers to a queue of another account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from acr_stack.accounts import client_in
from acr_stack.principals import access_key_id
from acr_testkit.emulator import EMULATOR_MODULE, emulator_process

pytestmark = pytest.mark.integration

CAR, MONITORING = "100000000003", "100000000005"
KEYS = {access_key_id("car-simulator"): CAR, access_key_id("route-monitor"): MONITORING}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with emulator_process(EMULATOR_MODULE, "--accounts", json.dumps(KEYS)) as (url, _pid):
        yield url


def _as(service: str, name: str, endpoint: str) -> Any:
    return boto3.client(
        name,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key_id(service),
        aws_secret_access_key="testing",
    )


def test_a_services_calls_are_made_in_the_account_of_its_key(endpoint: str) -> None:
    _as("car-simulator", "sqs", endpoint).create_queue(QueueName="acr-car-simulator-events")
    assert client_in(endpoint, CAR, "sqs").list_queues().get("QueueUrls")
    assert not client_in(endpoint, MONITORING, "sqs").list_queues().get("QueueUrls")
    assert not _as("bff", "sqs", endpoint).list_queues().get("QueueUrls")  # a key not mapped: default account


def test_a_stream_of_another_account_is_read_by_its_arn(endpoint: str) -> None:
    owner = _as("car-simulator", "kinesis", endpoint)
    owner.create_stream(StreamName="acr-car-telemetry", ShardCount=1)
    owner.put_record(StreamName="acr-car-telemetry", Data=b"car-7 moved", PartitionKey="car-7")
    arn = owner.describe_stream_summary(StreamName="acr-car-telemetry")["StreamDescriptionSummary"][
        "StreamARN"
    ]
    assert f":{CAR}:" in arn

    reader = _as("route-monitor", "kinesis", endpoint)
    shard = reader.list_shards(StreamARN=arn)["Shards"][0]["ShardId"]
    iterator = reader.get_shard_iterator(StreamARN=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = reader.get_records(ShardIterator=iterator["ShardIterator"], StreamARN=arn)["Records"]
    assert [r["Data"] for r in records] == [b"car-7 moved"]
    assert not reader.list_streams()["StreamNames"]  # the monitoring account has no stream of its own


def test_a_topic_of_another_account_delivers_to_a_queue_of_the_subscriber(endpoint: str) -> None:
    topic_arn = _as("car-simulator", "sns", endpoint).create_topic(Name="acr-car-news")["TopicArn"]
    sqs = _as("route-monitor", "sqs", endpoint)
    url = sqs.create_queue(QueueName="acr-route-monitor-news")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscriber = _as("route-monitor", "sns", endpoint)
    subscriber.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    assert len(subscriber.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]) == 1

    _as("car-simulator", "sns", endpoint).publish(TopicArn=topic_arn, Message="car-7 charged")
    received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in received] == ["car-7 charged"]
