"""The embedded emulator refuses a client's send that the queue's policy denies, as SQS does: a message
forged straight into a consumer's queue is refused, the consumer's own sends and the deliveries of the rule
that feeds the queue go through."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from acr.settings import SERVICE_PORTS
from acr.topology.queue_policy import EVENTBRIDGE, Feed, queue_policy, service_role
from acr_stack import StackConfig
from acr_stack.principals import SERVICE_OF_KEY, access_key_id, allows_send, principal_arn
from acr_testkit.emulator import moto_server

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:acr-payment-events"
RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/acr-ride/payment-events"


def test_every_service_has_its_own_key_which_stands_for_its_role() -> None:
    keys = [access_key_id(s) for s in SERVICE_PORTS]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 20 and k.isalnum() and k.isupper() for k in keys)
    assert SERVICE_OF_KEY[access_key_id("ride-manager")] == "ride-manager"
    assert principal_arn(QUEUE_ARN, access_key_id("payment")) == "arn:aws:iam::123456789012:role/acr-payment"
    assert principal_arn(QUEUE_ARN, "AKIAEXAMPLE") == "arn:aws:iam::123456789012:user/AKIAEXAMPLE"


def test_the_embedded_stack_gives_each_service_and_each_replica_its_services_key() -> None:
    config = StackConfig.free(env={"ACR_REPLICAS": "bff=2"})
    assert config.service_env("payment")["AWS_ACCESS_KEY_ID"] == access_key_id("payment")
    assert config.service_env("bff-2")["AWS_ACCESS_KEY_ID"] == access_key_id("bff")
    assert config.service_env("topology")["AWS_ACCESS_KEY_ID"] == "testing"  # a step of the stack, no service


def test_a_queue_policy_denies_a_direct_send_to_all_but_the_principals_it_names() -> None:
    policy = queue_policy(QUEUE_ARN, [Feed(EVENTBRIDGE, RULE_ARN)], [service_role(QUEUE_ARN, "payment")])
    assert allows_send(policy, "arn:aws:iam::123456789012:role/acr-payment")
    assert not allows_send(policy, "arn:aws:iam::123456789012:role/acr-reward")
    assert not allows_send(policy, "arn:aws:iam::123456789012:user/AKIAEXAMPLE")
    assert not allows_send(
        queue_policy(QUEUE_ARN, [Feed(EVENTBRIDGE, RULE_ARN)], []), service_role(QUEUE_ARN, "payment")
    )
    assert allows_send({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*"}]}, "anyone")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _client(service: str, endpoint: str, key: str = "testing") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="testing",
    )


def _bodies(sqs: Any, url: str) -> list[str]:
    found: list[str] = []
    for _ in range(5):
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        found += [m["Body"] for m in page.get("Messages", [])]
        if found:
            return found
        time.sleep(0.2)
    return found


@pytest.mark.integration
def test_the_emulator_refuses_a_forged_send_and_lets_the_rule_and_the_consumer_send(endpoint: str) -> None:
    admin, events = _client("sqs", endpoint), _client("events", endpoint)
    url = admin.create_queue(QueueName="acr-payment-events")["QueueUrl"]
    arn = admin.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name="acr-ride")
    rule_arn = events.put_rule(
        Name="payment-events",
        EventBusName="acr-ride",
        EventPattern=json.dumps({"source": ["acr.ride-manager"]}),
    )["RuleArn"]
    events.put_targets(Rule="payment-events", EventBusName="acr-ride", Targets=[{"Id": "queue", "Arn": arn}])
    policy = queue_policy(arn, [Feed(EVENTBRIDGE, rule_arn)], [service_role(arn, "payment")])
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})

    for key in ("testing", access_key_id("reward")):
        forger = _client("sqs", endpoint, key)
        with pytest.raises(ClientError) as refused:
            forger.send_message(QueueUrl=url, MessageBody="forged")
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError) as refused:
            forger.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "forged"}])
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert _bodies(admin, url) == []

    events.put_events(
        Entries=[
            {"EventBusName": "acr-ride", "Source": "acr.ride-manager", "DetailType": "t", "Detail": "{}"}
        ]
    )
    (delivered,) = _bodies(admin, url)
    assert json.loads(delivered)["source"] == "acr.ride-manager"

    consumer = _client("sqs", endpoint, access_key_id("payment"))
    consumer.send_message(QueueUrl=url, MessageBody="parked", DelaySeconds=0)
    sts = _client("sts", endpoint, access_key_id("payment"))
    assert sts.get_caller_identity()["Account"] == "123456789012"  # the service's key keeps its account


@pytest.mark.integration
def test_a_queue_without_a_policy_takes_anyones_send(endpoint: str) -> None:
    admin = _client("sqs", endpoint)
    url = admin.create_queue(QueueName="acr-payment-producer-dlq")["QueueUrl"]
    _client("sqs", endpoint, access_key_id("reward")).send_message(QueueUrl=url, MessageBody="any")
    assert _bodies(admin, url) == ["any"]
