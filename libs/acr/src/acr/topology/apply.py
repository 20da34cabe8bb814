"""Apply topology slices to whatever endpoint the settings name. Every step is idempotent."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.aws import MakeClient
from acr.catalog.base import bus_name
from acr.topology.model import ServiceTopology, Subscription, Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType


log = logging.getLogger(__name__)


class Clients:
    """The five AWS clients topology needs."""

    def __init__(self, make: MakeClient) -> None:
        self.events: EventBridgeClient = make("events")
        self.sqs: SQSClient = make("sqs")
        self.sns: SNSClient = make("sns")
        self.dynamodb: DynamoDBClient = make("dynamodb")
        self.kinesis: KinesisClient = make("kinesis")


def _ignore(codes: tuple[str, ...], call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in codes:
            return None
        raise


def apply(slices: list[ServiceTopology], clients: Clients, max_receives: int = 10) -> list[str]:
    """Create what is missing; returns a line per resource for the operator."""
    done: list[str] = []
    for s in slices:
        if s.bus:
            _ignore(("ResourceAlreadyExistsException",), partial(clients.events.create_event_bus, Name=s.bus))
            done.append(f"bus {s.bus}")
        for table in s.all_tables():
            create_table(clients.dynamodb, table)
            done.append(f"table {table.name}")
        for topic in s.topics:
            clients.sns.create_topic(Name=topic, Attributes=_topic_attributes(topic))
            done.append(f"topic {topic}")
        for stream in s.streams:
            _ignore(
                ("ResourceInUseException",),
                partial(clients.kinesis.create_stream, StreamName=stream.name, ShardCount=stream.shards),
            )
            done.append(f"stream {stream.name}")
        if s.has_outbox:
            create_queue(clients.sqs, s.producer_dlq, fifo=False)
            done.append(f"queue {s.producer_dlq}")
    for s in slices:
        done += _apply_subscriptions(s, clients, max_receives)
    return done


def _apply_subscriptions(s: ServiceTopology, clients: Clients, max_receives: int) -> list[str]:
    done: list[str] = []
    for sub in s.subscriptions:
        queue_arn = _queue_with_dlq(clients.sqs, s.queue(sub.queue), s.dlq(sub.queue), False, max_receives)
        for bus, rule in _rules(s, sub):
            clients.events.put_rule(
                Name=rule["name"], EventBusName=bus, EventPattern=json.dumps(rule["pattern"])
            )
            clients.events.put_targets(
                Rule=rule["name"], EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
            )
            done.append(f"rule {bus}/{rule['name']} -> {s.queue(sub.queue)}")
    for ts in s.topic_subscriptions:
        queue_arn = _queue_with_dlq(
            clients.sqs, s.queue(ts.queue, True), s.dlq(ts.queue, True), True, max_receives
        )
        topic_arn = clients.sns.create_topic(Name=ts.topic, Attributes=_topic_attributes(ts.topic))[
            "TopicArn"
        ]
        _subscribe(clients.sns, topic_arn, queue_arn)
        done.append(f"subscription {ts.topic} -> {s.queue(ts.queue, True)}")
    return done


def _rules(s: ServiceTopology, sub: Subscription) -> list[tuple[str, dict[str, Any]]]:
    """One rule per producer bus: ``<service>-<queue>`` matching the subscribed detail-types."""
    by_context: dict[str, list[str]] = {}
    for spec in sub.specs():
        by_context.setdefault(spec.context, []).append(spec.type)
    return [
        (bus_name(context), {"name": f"{s.service}-{sub.queue}", "pattern": {"detail-type": sorted(types)}})
        for context, types in sorted(by_context.items())
    ]


def _topic_attributes(topic: str) -> dict[str, str]:
    if topic.endswith(".fifo"):
        return {"FifoTopic": "true", "ContentBasedDeduplication": "false"}
    return {}


def _subscribe(sns: SNSClient, topic_arn: str, queue_arn: str) -> None:
    existing = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
    if any(sub.get("Endpoint") == queue_arn for sub in existing):
        return
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )


def create_queue(
    sqs: SQSClient, name: str, *, fifo: bool, attributes: Mapping[QueueAttributeNameType, str] | None = None
) -> str:
    """Create (or find) a queue; returns its URL."""
    attrs: dict[QueueAttributeNameType, str] = dict(attributes or {})
    if fifo:
        # A FIFO queue that is an EventBridge target needs content-based dedup (moto drops events otherwise).
        attrs |= {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    try:
        return str(sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={k: v for k, v in attrs.items() if k != "FifoQueue"}
        )
        return url


def _queue_arn(sqs: SQSClient, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _queue_with_dlq(sqs: SQSClient, name: str, dlq: str, fifo: bool, max_receives: int) -> str:
    dlq_arn = _queue_arn(
        sqs, create_queue(sqs, dlq, fifo=fifo, attributes={"MessageRetentionPeriod": "1209600"})
    )
    url = create_queue(
        sqs,
        name,
        fifo=fifo,
        attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            ),
        },
    )
    arn = _queue_arn(sqs, url)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "buses-and-topics",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sns.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return arn


def create_table(dynamodb: DynamoDBClient, table: Table) -> None:
    """On-demand table with its GSIs and TTL attribute; nothing happens if it exists."""
    attributes = {table.partition_key: "S"}
    key = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    if table.sort_key:
        attributes[table.sort_key] = table.sort_key_type
        key.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
    gsis = []
    for index in table.indexes:
        attributes[index.partition_key] = "S"
        index_key = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        if index.sort_key:
            attributes[index.sort_key] = index.sort_key_type
            index_key.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
        gsis.append(
            {"IndexName": index.name, "KeySchema": index_key, "Projection": {"ProjectionType": "ALL"}}
        )
    kwargs: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": key,
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    if _ignore(("ResourceInUseException",), lambda: dynamodb.create_table(**kwargs)) is None:
        return
    dynamodb.get_waiter("table_exists").wait(
        TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )
