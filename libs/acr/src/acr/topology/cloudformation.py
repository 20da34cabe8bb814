"""One CloudFormation stack per bounded context, from the same plan ``apply`` walks (docs/deploy.md).

Each context's account gets: its bus (and a bus policy: only its own source puts events there, the producers
it subscribes to may forward to it, the consumers on its allow-list may manage the rules they create), a rule
per foreign subscription forwarding the subscribed types to the consumer's bus (with a DLQ, a retry policy and
a role), a rule per own subscription feeding the service's queue, queues with DLQs and redrive, its topic,
stream and tables, alarms, one task role per service holding exactly what its slice uses, the service as an
ECS Fargate task definition + service, its schemas in the EventBridge schema registry, and, as an option,
the outbox relayed by a DynamoDB stream and an EventBridge Pipe.
"""

from __future__ import annotations

import json

from acr.catalog import SPECS
from acr.catalog.base import bus_name
from acr.outbox_metric import METRIC as OUTBOX_METRIC
from acr.outbox_metric import NAMESPACE as OUTBOX_METRIC_NAMESPACE
from acr.topology.allow_lists import ALLOW_LISTS
from acr.topology.model import Stream, Table
from acr.topology.plan import Delivery, Queue, ServicePlan, producer_source
from acr.topology.queue_policy import EVENTBRIDGE, SNS, Feed, queue_policy
from acr.topology.schemas import eventbridge_schema
from acr.topology.services import cluster, publishes_bus_from_outbox, service
from acr.topology.stack import (
    STREAM_READ_ACTIONS,
    Json,
    Stack,
    arn_of,
    camel,
    logical_queue,
    logical_queue_name,
    logical_table,
    policy,
    ref,
    skip,
    sub,
    topic_context,
    trust,
    unique,
)
from acr.unit_of_work import PIPE

OUTBOX_AGE_ALARM_S = 120
RULE_RETRY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400}  # EventBridge's own maximums

_RULE_ACTIONS = [
    "events:DeleteRule",
    "events:DescribeRule",
    "events:DisableRule",
    "events:EnableRule",
    "events:ListTargetsByRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
]


SQS_MANAGED_SSE = (
    "CKV_AWS_27",
    "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which this check does not read; a "
    "customer key would have to trust every producer (EventBridge, SNS, other accounts) in its key policy.",
)
DLQ_HAS_NO_DLQ = ("ES6000", "A dead-letter queue is where failed messages end; it has no DLQ of its own.")


def templates(plans: list[ServicePlan]) -> dict[str, Json]:
    """Context -> its stack's template."""
    contexts = sorted({p.context for p in plans})
    return {context: _template(context, plans) for context in contexts}


def _template(context: str, everyone: list[ServicePlan]) -> Json:
    stack = Stack(context, [p for p in everyone if p.context == context], everyone)
    _common_parameters(stack)
    _key(stack)
    if stack.has_bus:
        _bus(stack)
    _resources(stack)
    if stack.has_bus:
        _rules(stack)
    _schemas(stack)
    if stack.plans:
        cluster(stack)
    for p in stack.plans:
        service(stack, p)
    if any(publishes_bus_from_outbox(p) for p in stack.plans):
        _pipes(stack)
    return stack.template()


def _resources(stack: Stack) -> None:
    """Each service's tables, topics, streams, queues and alarms."""
    for p in stack.plans:
        for table in p.tables:
            _table(stack, table, outbox=table.name == p.slice.outbox_table and p.slice.has_outbox)
        for topic in p.topics:
            _topic(stack, topic)
        for stream in p.streams:
            _stream(stack, stream)
        if p.producer_dlq:
            _queue(stack, p.producer_dlq)
            _alarms_of_producer(stack, p)
        for delivery in p.deliveries if not p.slice.per_replica else ():
            _delivery(stack, p, delivery)


# --- parameters and the key ------------------------------------------------------------------------------
def _common_parameters(stack: Stack) -> None:
    stack.parameters.update(
        {
            "ImageRegistryAccountId": {
                "Type": "String",
                "AllowedPattern": "^[0-9]{12}$",
                "Description": "The account whose ECR holds the images <prefix>/<service>.",
            },
            "ImageRepositoryPrefix": {"Type": "String", "Default": "acr"},
            "ImageTag": {"Type": "String", "Description": "The tag every service's image is deployed at."},
            "VpcId": {"Type": "AWS::EC2::VPC::Id"},
            "SubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>", "Description": "Private subnets."},
            "VpcCidr": {
                "Type": "String",
                "Default": "10.0.0.0/16",
                "AllowedPattern": "^[0-9./]+$",
                "Description": "Where the other services call from.",
            },
            "ServiceDomain": {
                "Type": "String",
                "Default": "acr.internal",
                "Description": "Services answer at http://<service>.<domain>:<port>.",
            },
            "DesiredCount": {"Type": "Number", "Default": 1, "MinValue": 0},
            "City": {"Type": "String", "Default": "full", "Description": "ACR_CITY of every service."},
        }
    )


def _key(stack: Stack) -> None:
    statements: list[Json] = [
        {
            "Sid": "account-administers",
            "Effect": "Allow",
            "Principal": {"AWS": stack.root(stack.context)},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "logs-encrypt",
            "Effect": "Allow",
            "Principal": {"Service": sub("logs.${AWS::Region}.amazonaws.com")},
            "Action": [
                "kms:Decrypt*",
                "kms:Describe*",
                "kms:Encrypt*",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": sub(
                        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/acr/*"
                    )
                }
            },
        },
    ]
    readers = _stream_readers(stack)
    if readers:
        statements.append(
            {
                "Sid": "stream-readers-decrypt",
                "Effect": "Allow",
                "Principal": {"AWS": [stack.root(c) for c in readers]},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": sub("kinesis.${AWS::Region}.amazonaws.com")}
                },
            }
        )
    stack.add(
        "Key",
        "AWS::KMS::Key",
        {
            "Description": f"ACR {stack.context}: tables, topic, stream and logs",
            "EnableKeyRotation": True,
            "KeyPolicy": {"Version": "2012-10-17", "Statement": statements},
        },
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    )
    stack.add(
        "KeyAlias", "AWS::KMS::Alias", {"AliasName": f"alias/acr-{stack.context}", "TargetKeyId": ref("Key")}
    )


def _stream_readers(stack: Stack) -> list[str]:
    """Allow-listed contexts, when this context owns a stream."""
    if not any(p.streams for p in stack.plans):
        return []
    return sorted(c for c in ALLOW_LISTS.get(stack.context, ()) if c != stack.context)


def _consumers(stack: Stack) -> list[str]:
    return sorted(c for c in ALLOW_LISTS.get(stack.context, ()) if c != stack.context)


# --- the bus, its policy and its rules --------------------------------------------------------------------
def _bus(stack: Stack) -> None:
    stack.add("Bus", "AWS::Events::EventBus", {"Name": stack.bus})
    bus_arn = arn_of("Bus")
    own = {"aws:PrincipalAccount": sub("${AWS::AccountId}")}
    if stack.publishes_on_bus:
        deny: Json = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": bus_arn,
            "Condition": {
                "StringEquals": own,
                "StringNotEquals": {"events:source": producer_source(stack.context)},
            },
        }
    else:
        deny = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": bus_arn,
            "Condition": {"StringEquals": own},
        }
    _bus_policy(stack, "BusPolicyOwnSourceOnly", "own-source-only", deny)
    for producer in sorted(
        {r.producer for _, d in stack.local_deliveries for r in d.routes} - {stack.context}
    ):
        _bus_policy(
            stack,
            f"BusPolicyFrom{camel(producer)}",
            f"from-{producer}",
            {
                "Effect": "Allow",
                "Principal": {"AWS": stack.root(producer)},
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringEquals": {"events:source": producer_source(producer)}},
            },
        )
    consumers = _consumers(stack)
    if stack.publishes_on_bus and consumers:
        _bus_policy(
            stack,
            "BusPolicySubscribers",
            "allow-listed-subscribers",
            {
                "Effect": "Allow",
                "Principal": {"AWS": [stack.root(c) for c in consumers]},
                "Action": _RULE_ACTIONS,
                "Resource": stack.arn("events", stack.context, f"rule/{stack.bus}/*"),
                "Condition": {
                    "StringEqualsIfExists": {
                        "events:creatorAccount": "${aws:PrincipalAccount}",
                        "events:source": producer_source(stack.context),
                    }
                },
            },
        )
    stack.outputs["BusArn"] = {"Value": bus_arn}
    for archive in (p.archive for p in stack.plans if p.archive and p.archive.bus == stack.bus):
        stack.add(
            "BusArchive",
            "AWS::Events::Archive",
            {
                "ArchiveName": archive.name,
                "Description": f"Every event {archive.source} put on {archive.bus}: read models are rebuilt "
                "by replaying it.",
                "SourceArn": bus_arn,
                "EventPattern": archive.pattern,
                "RetentionDays": archive.retention_days,
            },
        )


def _bus_policy(stack: Stack, logical: str, sid: str, statement: Json) -> None:
    """One statement of the bus's policy; each waits for the one before (they all rewrite one policy)."""
    before = [k for k, r in stack.resources.items() if r["Type"] == "AWS::Events::EventBusPolicy"]
    stack.add(
        logical,
        "AWS::Events::EventBusPolicy",
        {"EventBusName": stack.bus, "StatementId": sid, "Statement": {"Sid": sid, **statement}},
        **({"DependsOn": before[-1]} if before else {}),
    )


def _rules(stack: Stack) -> None:
    """Forwarding rules for the consumers in other accounts, then this context's own subscriptions."""
    forwards = stack.forwards
    local = stack.local_deliveries
    if not forwards and not local:
        return
    dlq = Queue(f"acr-{stack.context}-delivery-dlq", retention_s=1_209_600)
    dlq_logical = _queue(stack, dlq)
    stack.add(
        f"{dlq_logical}Policy",
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(dlq_logical)],
            "PolicyDocument": _send_from(
                "events.amazonaws.com",
                arn_of(dlq_logical),
                {"ArnLike": {"aws:SourceArn": stack.arn("events", stack.context, f"rule/{stack.bus}/*")}},
            ),
        },
    )
    targets: list[Json] = []
    for p, delivery in forwards:
        route = next(r for r in delivery.routes if r.producer == stack.context)
        target_bus = stack.arn("events", p.context, f"event-bus/{bus_name(p.context)}")
        targets.append(target_bus)
        _rule(
            stack,
            f"Forward{camel(route.rule)}",
            route.rule,
            route.pattern,
            {"Id": f"{p.context}-bus", "Arn": target_bus, "RoleArn": arn_of("ForwarderRole")},
            f"{p.service}/{delivery.queue.name} in the {p.context} account",
        )
    if forwards:
        _forwarder_role(stack, targets)
    for p, delivery in local:
        if p.slice.per_replica:  # each replica puts its own rule on this bus (acr.topology.replicas)
            continue
        rule = delivery.routes[0].rule
        _rule(
            stack,
            f"Rule{camel(rule)}",
            rule,
            delivery.pattern,
            {"Id": "queue", "Arn": arn_of(logical_queue(delivery.queue))},
            f"{p.service}'s queue {delivery.queue.name}",
        )


def _rule(stack: Stack, logical: str, name: str, pattern: Json, target: Json, what: str) -> None:
    """A rule on this context's bus (named, not referenced: moto's CloudFormation resolves a bus's Ref to
    an object)."""
    stack.add(
        logical,
        "AWS::Events::Rule",
        {
            "Name": name,
            "Description": f"Delivers to {what}.",
            "EventBusName": stack.bus,
            "EventPattern": pattern,
            "State": "ENABLED",
            "Targets": [
                {
                    **target,
                    "DeadLetterConfig": {
                        "Arn": arn_of(logical_queue_name(f"acr-{stack.context}-delivery-dlq"))
                    },
                    "RetryPolicy": RULE_RETRY,
                }
            ],
        },
        DependsOn="Bus",
    )


def _forwarder_role(stack: Stack, buses: list[Json]) -> None:
    stack.add(
        "ForwarderRole",
        "AWS::IAM::Role",
        {
            "Description": f"EventBridge forwards {stack.bus}'s subscribed types to the consumers' buses.",
            "AssumeRolePolicyDocument": trust("events.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "put-on-consumer-buses",
                    "PolicyDocument": policy(
                        [{"Sid": "consumerBuses", "Action": ["events:PutEvents"], "Resource": unique(buses)}]
                    ),
                }
            ],
        },
    )


# --- tables, topic, stream, queues -------------------------------------------------------------------------
def _table(stack: Stack, table: Table, *, outbox: bool) -> None:
    properties: Json = table.definition()
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": ref("Key")}
    if outbox:
        properties["StreamSpecification"] = {"StreamViewType": "NEW_IMAGE"}
    stack.add(
        logical_table(table.name),
        "AWS::DynamoDB::Table",
        properties,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    )


def _topic(stack: Stack, topic: str) -> None:
    logical = "Topic" + camel(topic.removeprefix("acr-"))
    stack.add(
        logical,
        "AWS::SNS::Topic",
        {
            "TopicName": topic,
            "FifoTopic": True,
            "ContentBasedDeduplication": False,
            "KmsMasterKeyId": ref("Key"),
        },
    )
    consumers = _consumers(stack)
    if consumers:
        stack.add(
            f"{logical}Policy",
            "AWS::SNS::TopicPolicy",
            {
                "Topics": [ref(logical)],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "allow-listed-subscribers",
                            "Effect": "Allow",
                            "Principal": {"AWS": [stack.root(c) for c in consumers]},
                            "Action": "sns:Subscribe",
                            "Resource": ref(logical),
                            "Condition": {"StringEquals": {"sns:Protocol": "sqs"}},
                        }
                    ],
                },
            },
        )
    stack.outputs[f"{logical}Arn"] = {"Value": ref(logical)}


def _stream(stack: Stack, stream: Stream) -> None:
    logical = "Stream" + camel(stream.name.removeprefix("acr-"))
    stack.add(
        logical,
        "AWS::Kinesis::Stream",
        {
            "Name": stream.name,
            "ShardCount": stream.shards,
            "RetentionPeriodHours": 24,
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": arn_of("Key")},
        },
    )
    readers = _stream_readers(stack)
    if readers:
        stack.add(
            f"{logical}Policy",
            "AWS::Kinesis::ResourcePolicy",
            {
                "ResourceArn": arn_of(logical),
                "ResourcePolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "allow-listed-readers",
                            "Effect": "Allow",
                            "Principal": {"AWS": [stack.root(c) for c in readers]},
                            "Action": STREAM_READ_ACTIONS,
                            "Resource": arn_of(logical),
                        }
                    ],
                },
            },
        )
    stack.outputs[f"{logical}Arn"] = {"Value": arn_of(logical)}


def _queue(stack: Stack, queue: Queue, condition: str | None = None) -> str:
    properties: Json = {"QueueName": queue.name}
    if queue.fifo:
        properties |= {"FifoQueue": True, "ContentBasedDeduplication": True}
    if queue.retention_s is not None:
        properties["MessageRetentionPeriod"] = queue.retention_s
    if queue.visibility_timeout_s is not None:
        properties["VisibilityTimeout"] = queue.visibility_timeout_s
    if queue.dlq is not None:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": arn_of(logical_queue_name(queue.dlq)),
            "maxReceiveCount": queue.max_receives,
        }
    properties["SqsManagedSseEnabled"] = True
    extra: Json = {"Condition": condition} if condition else {}
    dead_letters = queue.dlq is None
    extra["Metadata"] = skip((SQS_MANAGED_SSE,), (DLQ_HAS_NO_DLQ,) if dead_letters else ())
    logical = stack.add(logical_queue(queue), "AWS::SQS::Queue", properties, **extra)
    if queue.dlq is None:
        _dlq_alarm(stack, queue, condition)
    return logical


def _send_from(service: str, queue_arn: Json, condition: Json) -> Json:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "deliver",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": condition,
            }
        ],
    }


def _delivery(stack: Stack, p: ServicePlan, delivery: Delivery) -> None:
    """The queue and its DLQ; a rule on this context's bus, or a subscription to the topic, sends to it.
    Their policies let only that rule or topic, and the consuming service's task role (its dead letters,
    its own redrive), send to them, as ``apply``'s do."""
    dlq = _queue(stack, delivery.dlq)
    logical = _queue(stack, delivery.queue)
    consumer = [arn_of(f"{camel(p.service)}TaskRole")]
    feeds: list[Feed] = []
    dlq_feeds: list[Feed] = []
    if delivery.routes:
        rule = stack.arn("events", stack.context, f"rule/{stack.bus}/{delivery.routes[0].rule}")
        feeds.append(Feed(EVENTBRIDGE, rule))
    else:
        assert delivery.topic is not None
        topic_arn = _topic_arn(stack, delivery.topic)
        stack.add(
            f"{logical}Subscription",
            "AWS::SNS::Subscription",
            {
                "TopicArn": topic_arn,
                "Protocol": "sqs",
                "Endpoint": arn_of(logical),
                "RawMessageDelivery": True,
                "RedrivePolicy": {"deadLetterTargetArn": arn_of(dlq)},
            },
        )
        feeds.append(Feed(SNS, topic_arn))
        dlq_feeds.append(Feed(SNS, topic_arn))  # the DLQ takes what SNS could not deliver to the queue
    for queue, queue_feeds in ((logical, feeds), (dlq, dlq_feeds)):
        policy = queue_policy(arn_of(queue), queue_feeds, consumer)
        stack.add(
            f"{queue}Policy", "AWS::SQS::QueuePolicy", {"Queues": [ref(queue)], "PolicyDocument": policy}
        )


def _topic_arn(stack: Stack, topic: str) -> Json:
    return stack.arn("sns", topic_context(topic), topic)


# --- alarms -------------------------------------------------------------------------------------------------
def _alarm_actions(stack: Stack) -> Json:
    stack.parameters["AlarmTopicArn"] = {
        "Type": "String",
        "Default": "",
        "Description": "SNS topic the alarms notify (empty: none).",
    }
    stack.conditions["HasAlarmTopic"] = {"Fn::Not": [{"Fn::Equals": [ref("AlarmTopicArn"), ""]}]}
    return {"Fn::If": ["HasAlarmTopic", [ref("AlarmTopicArn")], ref("AWS::NoValue")]}


def _dlq_alarm(stack: Stack, queue: Queue, condition: str | None) -> None:
    extra = {"Condition": condition} if condition else {}
    stack.add(
        f"{logical_queue(queue)}DepthAlarm",
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{queue.name}-depth",
            "AlarmDescription": f"Messages are waiting in the dead-letter queue {queue.name}.",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": queue.name}],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": _alarm_actions(stack),
        },
        **extra,
    )


def _alarms_of_producer(stack: Stack, p: ServicePlan) -> None:
    stack.add(
        f"Outbox{camel(p.service)}AgeAlarm",
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"acr-{p.service}-outbox-oldest-pending",
            "AlarmDescription": f"{p.service}'s oldest pending outbox row is older than "
            f"{OUTBOX_AGE_ALARM_S} s, or its relay publishes no age (not running).",
            "Namespace": OUTBOX_METRIC_NAMESPACE,
            "MetricName": OUTBOX_METRIC,
            "Dimensions": [{"Name": "Service", "Value": p.service}],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 3,
            "Threshold": OUTBOX_AGE_ALARM_S,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "breaching",
            "AlarmActions": _alarm_actions(stack),
        },
    )


# --- the schema registry -----------------------------------------------------------------------------------
def _schemas(stack: Stack) -> None:
    specs = [s for s in SPECS if s.context == stack.context]
    if not specs:
        return
    stack.add(
        "SchemaRegistry",
        "AWS::EventSchemas::Registry",
        {
            "RegistryName": f"acr-{stack.context}",
            "Description": f"The {stack.context} context's event types.",
        },
    )
    for spec in specs:
        stack.add(
            f"Schema{spec.name}V{spec.version}",
            "AWS::EventSchemas::Schema",
            {
                "RegistryName": {"Fn::GetAtt": ["SchemaRegistry", "RegistryName"]},
                "SchemaName": f"{spec.type}@v{spec.version}",
                "Type": "JSONSchemaDraft4",
                "Description": f"{spec.type} v{spec.version}, published on {spec.destination}.",
                "Content": json.dumps(eventbridge_schema(spec), sort_keys=True, separators=(",", ":")),
            },
        )


# --- the Pipes outbox (an option) ---------------------------------------------------------------------------
def _pipes(stack: Stack) -> None:
    stack.parameters["OutboxRelay"] = {
        "Type": "String",
        "Default": "polling",
        "AllowedValues": ["polling", "pipes"],
        "Description": "polling: the services' relays publish the outbox; pipes: a DynamoDB stream and an "
        "EventBridge Pipe publish its bus rows (docs/deploy.md).",
    }
    stack.conditions["UsePipes"] = {"Fn::Equals": [ref("OutboxRelay"), "pipes"]}
    for p in stack.plans:
        if publishes_bus_from_outbox(p):
            _pipe(stack, p)


def _pipe(stack: Stack, p: ServicePlan) -> None:
    name = camel(p.service)
    table = logical_table(p.slice.outbox_table)
    dlq = Queue(f"acr-{p.service}-pipe-dlq", retention_s=1_209_600)
    dlq_logical = _queue(stack, dlq, "UsePipes")
    stream_arn = {"Fn::GetAtt": [table, "StreamArn"]}
    stack.add(
        f"{name}PipeRole",
        "AWS::IAM::Role",
        {
            "Description": f"The Pipe puts the rows of acr-{p.service}'s outbox stream on {stack.bus}.",
            "AssumeRolePolicyDocument": trust("pipes.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "outbox-to-bus",
                    "PolicyDocument": policy(
                        [
                            {
                                "Sid": "readOutboxStream",
                                "Action": [
                                    "dynamodb:DescribeStream",
                                    "dynamodb:GetRecords",
                                    "dynamodb:GetShardIterator",
                                    "dynamodb:ListStreams",
                                ],
                                "Resource": stream_arn,
                            },
                            {"Sid": "tableKey", "Action": ["kms:Decrypt"], "Resource": arn_of("Key")},
                            {
                                "Sid": "publishOnBus",
                                "Action": ["events:PutEvents"],
                                "Resource": arn_of("Bus"),
                            },
                            {
                                "Sid": "deadLetter",
                                "Action": ["sqs:SendMessage"],
                                "Resource": arn_of(dlq_logical),
                            },
                        ]
                    ),
                }
            ],
        },
        Condition="UsePipes",
    )
    # Only the rows the kernel wrote for the Pipe (``acr.unit_of_work.outbox_row``): a row still pending from
    # polling is the relay's, and the relay's later writes (SENT, a redrive) are not inserts.
    pattern = {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"destination": {"S": [f"bus:{stack.bus}"]}, "status": {"S": [PIPE]}}},
    }
    stack.add(
        f"{name}OutboxPipe",
        "AWS::Pipes::Pipe",
        {
            "Name": f"acr-{p.service}-outbox",
            "Description": f"acr-{p.service}'s outbox rows for {stack.bus}, as the relay would publish them.",
            "RoleArn": arn_of(f"{name}PipeRole"),
            "Source": stream_arn,
            "SourceParameters": {
                "DynamoDBStreamParameters": {
                    "StartingPosition": "TRIM_HORIZON",
                    "BatchSize": 10,
                    "MaximumRetryAttempts": 10,
                    "OnPartialBatchItemFailure": "AUTOMATIC_BISECT",
                    "DeadLetterConfig": {"Arn": arn_of(dlq_logical)},
                },
                "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern, sort_keys=True)}]},
            },
            "Target": arn_of("Bus"),
            "TargetParameters": {
                "EventBridgeEventBusParameters": {
                    "DetailType": "$.dynamodb.NewImage.type.S",
                    "Source": "$.dynamodb.NewImage.source.S",
                },
                "InputTemplate": "<$.dynamodb.NewImage.event.S>",
            },
        },
        Condition="UsePipes",
    )
