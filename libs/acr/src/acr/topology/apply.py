"""Apply topology slices to whatever endpoint the settings name. Every step is idempotent."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from acr.aws import MakeClient
from acr.topology.model import ServiceTopology, Table
from acr.topology.plan import Archive, Delivery, Queue, plan
from acr.topology.queue_policy import EVENTBRIDGE, SNS, Feed, queue_policy, service_role

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
    plans = plan(slices, max_receives)
    done: list[str] = []
    for p in plans:
        if p.bus:
            _ignore(("ResourceAlreadyExistsException",), partial(clients.events.create_event_bus, Name=p.bus))
            done.append(f"bus {p.bus}")
        if p.archive:
            _create_archive(clients.events, p.archive)
            done.append(f"archive {p.archive.name}")
        for table in p.tables:
            create_table(clients.dynamodb, table)
            done.append(f"table {table.name}")
        for topic in p.topics:
            clients.sns.create_topic(Name=topic, Attributes=_topic_attributes(topic))
            done.append(f"topic {topic}")
        for stream in p.streams:
            _ignore(
                ("ResourceInUseException",),
                partial(clients.kinesis.create_stream, StreamName=stream.name, ShardCount=stream.shards),
            )
            done.append(f"stream {stream.name}")
        if p.producer_dlq:
            _create(clients.sqs, p.producer_dlq)
            done.append(f"queue {p.producer_dlq.name}")
    for p in plans:
        for delivery in p.deliveries if not p.slice.per_replica else ():
            done += _apply_delivery(delivery, p.service, clients)
    return done


def _create_archive(events: EventBridgeClient, archive: Archive) -> None:
    bus_arn = events.describe_event_bus(Name=archive.bus)["Arn"]
    _ignore(
        ("ResourceAlreadyExistsException",),
        partial(
            events.create_archive,
            ArchiveName=archive.name,
            EventSourceArn=bus_arn,
            EventPattern=json.dumps(archive.pattern),
            RetentionDays=archive.retention_days,
        ),
    )


def _apply_delivery(delivery: Delivery, consumer: str, clients: Clients) -> list[str]:
    dlq_url = _create(clients.sqs, delivery.dlq)
    dlq_arn = _queue_arn(clients.sqs, dlq_url)
    url = _create(clients.sqs, delivery.queue, dlq_arn)
    queue_arn = _queue_arn(clients.sqs, url)
    done: list[str] = []
    feeds: list[Feed] = []
    for route in delivery.routes:
        rule_arn = clients.events.put_rule(
            Name=route.rule, EventBusName=route.bus, EventPattern=json.dumps(route.pattern)
        )["RuleArn"]
        clients.events.put_targets(
            Rule=route.rule, EventBusName=route.bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        feeds.append(Feed(EVENTBRIDGE, rule_arn))
        done.append(f"rule {route.bus}/{route.rule} -> {delivery.queue.name}")
    dlq_feeds: list[Feed] = []
    if delivery.topic:
        topic_arn = clients.sns.create_topic(
            Name=delivery.topic, Attributes=_topic_attributes(delivery.topic)
        )["TopicArn"]
        _subscribe(clients.sns, topic_arn, queue_arn)
        feeds.append(Feed(SNS, topic_arn))
        dlq_feeds.append(Feed(SNS, topic_arn))  # what SNS could not deliver to the queue
        done.append(f"subscription {delivery.topic} -> {delivery.queue.name}")
    _set_policy(clients.sqs, url, queue_policy(queue_arn, feeds, [service_role(queue_arn, consumer)]))
    _set_policy(clients.sqs, dlq_url, queue_policy(dlq_arn, dlq_feeds, [service_role(dlq_arn, consumer)]))
    return done


def _set_policy(sqs: SQSClient, url: str, policy: dict[str, Any]) -> None:
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})


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


def _attributes(queue: Queue, dlq_arn: str | None = None) -> dict[QueueAttributeNameType, str]:
    attributes: dict[QueueAttributeNameType, str] = {}
    if queue.retention_s is not None:
        attributes["MessageRetentionPeriod"] = str(queue.retention_s)
    if queue.visibility_timeout_s is not None:
        attributes["VisibilityTimeout"] = str(queue.visibility_timeout_s)
    if dlq_arn is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receives)}
        )
    return attributes


def _create(sqs: SQSClient, queue: Queue, dlq_arn: str | None = None) -> str:
    return create_queue(sqs, queue.name, fifo=queue.fifo, attributes=_attributes(queue, dlq_arn))


def create_table(dynamodb: DynamoDBClient, table: Table) -> None:
    """On-demand table with its GSIs and TTL attribute; nothing happens if it exists."""
    kwargs = table.definition()
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
