"""Each service as ECS Fargate runs it: its cluster, log group, security group, execution role, task role
(exactly what its slice uses), task definition (image, port, ``ACR_*`` environment, secrets) and service."""

from __future__ import annotations

import json
from typing import Any

from acr.outbox_metric import NAMESPACE as OUTBOX_METRIC_NAMESPACE
from acr.secrets import SECRET_SETTINGS
from acr.settings import SERVICE_PORTS
from acr.topology.plan import ServicePlan, producer_source
from acr.topology.stack import (
    STREAM_READ_ACTIONS,
    Json,
    Stack,
    arn_of,
    camel,
    logical_queue,
    logical_table,
    policy,
    ref,
    stream_context,
    sub,
    topic_context,
    trust,
)

CACHE_DIR = "/home/acr/.cache"

CITY_CACHE_DIR = f"{CACHE_DIR}/acr-city"

LOG_RETENTION_DAYS = 365

TASK_SIZES: dict[str, tuple[str, str]] = {  # (cpu units, MiB): the city services hold the street graph
    "address-finder": ("1024", "4096"),
    "car-dispatcher": ("1024", "4096"),
    "route-monitor": ("1024", "4096"),
    "car-simulator": ("1024", "4096"),
}

DEFAULT_TASK_SIZE = ("512", "1024")

_EVERY_SERVICE_SECRETS = ("ops-token", "service-key", "service-public-keys")  # docs/security.md
SECRETS: dict[str, tuple[str, ...]] = {
    service: _EVERY_SERVICE_SECRETS + (("token-secret",) if service == "bff" else ())
    for service in SERVICE_PORTS
}
"""Settings read from SSM SecureString parameters ``/acr/<service>/<name>`` (``ACR_<NAME>`` in the task):
every service checks the ops token and the service identities and holds its own key; the BFF signs rider
tokens."""


def secret_settings(service: str) -> tuple[str, ...]:
    """The secret settings ``service`` holds (those it checks at start outside the embedded stack): its
    shared SSM parameters, and the previous rider-token secrets beside the current one."""
    names = tuple(name.replace("-", "_") for name in SECRETS.get(service, ()))
    shared = tuple(name for name in names if name in SECRET_SETTINGS)  # a service key is checked on use
    return shared + (("token_previous_secrets",) if "token_secret" in names else ())


_ITEM_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
]

_TABLE_KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
"""The tables are encrypted with the context's key: reading and writing them uses it for the caller."""
_CONSUME_ACTIONS = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
]

_DEAD_LETTER_ACTIONS = [
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
]
"""A consumer sends a poison message to its DLQ; its ``/v1/ops/dlq`` reads the DLQ (a peek for the reasons)
and redrives it (receive, send back to its own queue, delete)."""


def cluster(stack: Stack) -> None:
    stack.add(
        "Cluster",
        "AWS::ECS::Cluster",
        {
            "ClusterName": f"acr-{stack.context}",
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    )


def service(stack: Stack, p: ServicePlan) -> None:
    name = camel(p.service)
    port = SERVICE_PORTS[p.service]
    stack.add(
        f"{name}LogGroup",
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/acr/{p.service}",
            "RetentionInDays": LOG_RETENTION_DAYS,
            "KmsKeyId": arn_of("Key"),
        },
    )
    stack.add(
        f"{name}SecurityGroup",
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": f"acr-{p.service}: its port from the VPC; out: HTTPS and the ACR ports",
            "VpcId": ref("VpcId"),
            "SecurityGroupIngress": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "CidrIp": ref("VpcCidr"),
                    "Description": "callers inside the VPC",
                }
            ],
            "SecurityGroupEgress": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "CidrIp": "0.0.0.0/0",
                    "Description": "AWS APIs",
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": min(SERVICE_PORTS.values()),
                    "ToPort": max(SERVICE_PORTS.values()),
                    "CidrIp": ref("VpcCidr"),
                    "Description": "the other services",
                },
            ],
        },
    )
    _execution_role(stack, p)
    _task_role(stack, p)
    _task_definition(stack, p)
    stack.add(
        f"{name}Service",
        "AWS::ECS::Service",
        {
            "ServiceName": f"acr-{p.service}",
            "Cluster": ref("Cluster"),
            "TaskDefinition": ref(f"{name}TaskDefinition"),
            "LaunchType": "FARGATE",
            "DesiredCount": ref("DesiredCount"),
            "DeploymentConfiguration": {
                "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                "MaximumPercent": 200,
                "MinimumHealthyPercent": 100,
            },
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "AssignPublicIp": "DISABLED",
                    "SecurityGroups": [{"Fn::GetAtt": [f"{name}SecurityGroup", "GroupId"]}],
                    "Subnets": ref("SubnetIds"),
                }
            },
            "PropagateTags": "SERVICE",
            "EnableECSManagedTags": True,
        },
    )


def _secret_arn(service: str, secret: str) -> Json:
    return sub(
        f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/acr/{service}/{secret}"
    )


def _execution_role(stack: Stack, p: ServicePlan) -> None:
    name = camel(p.service)
    statements: list[Json] = [
        {"Sid": "registryToken", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Sid": "pullImage",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": sub(
                "arn:${AWS::Partition}:ecr:${AWS::Region}:${ImageRegistryAccountId}:repository/"
                f"${{ImageRepositoryPrefix}}/{p.service}"
            ),
        },
        {
            "Sid": "writeLogs",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::Sub": f"${{{name}LogGroup.Arn}}:*"},
        },
    ]
    secrets = SECRETS.get(p.service, ())
    if secrets:
        statements.append(
            {
                "Sid": "readSecrets",
                "Action": ["ssm:GetParameters"],
                "Resource": [_secret_arn(p.service, s) for s in secrets],
            }
        )
    stack.add(
        f"{name}ExecutionRole",
        "AWS::IAM::Role",
        {
            "Description": f"ECS starts acr-{p.service}: pulls its image, writes its logs, reads secrets.",
            "AssumeRolePolicyDocument": trust("ecs-tasks.amazonaws.com"),
            "Policies": [{"PolicyName": "start-task", "PolicyDocument": policy(statements)}],
        },
    )


def _task_role(stack: Stack, p: ServicePlan) -> None:
    name = camel(p.service)
    statements = task_statements(stack, p)
    properties: Json = {
        "RoleName": f"acr-{p.service}",  # the principal its queues' policies name (acr.topology.queue_policy)
        "Description": f"acr-{p.service}: exactly what its topology slice uses.",
        "AssumeRolePolicyDocument": trust("ecs-tasks.amazonaws.com"),
    }
    if statements:
        properties["Policies"] = [{"PolicyName": "slice", "PolicyDocument": policy(statements)}]
    stack.add(f"{name}TaskRole", "AWS::IAM::Role", properties)


def task_statements(stack: Stack, p: ServicePlan) -> list[Json]:
    """The slice's permissions: its tables, queues, bus, topic, streams and the relay's metric."""
    s = p.slice
    statements: list[Json] = []
    if p.tables:
        tables = [arn_of(logical_table(t.name)) for t in p.tables]
        indexes = [{"Fn::Sub": f"${{{logical_table(t.name)}.Arn}}/index/*"} for t in p.tables if t.indexes]
        statements.append({"Sid": "tables", "Action": _ITEM_ACTIONS, "Resource": tables + indexes})
        statements.append({"Sid": "tableKey", "Action": _TABLE_KEY_ACTIONS, "Resource": arn_of("Key")})
    statements += _publish_statements(p)
    statements += _rebuild_statements(stack, p)
    queues = [arn_of(logical_queue(d.queue)) for d in p.deliveries]
    if queues and s.per_replica:
        statements += _replica_statements(stack, p)
    elif queues:
        statements.append({"Sid": "consume", "Action": _CONSUME_ACTIONS, "Resource": queues})
        dlqs = [arn_of(logical_queue(d.dlq)) for d in p.deliveries]
        statements.append({"Sid": "deadLetter", "Action": _DEAD_LETTER_ACTIONS, "Resource": dlqs})
    for stream in p.streams:
        logical = "Stream" + camel(stream.name.removeprefix("acr-"))
        statements.append(
            {"Sid": "writeStream", "Action": ["kinesis:PutRecords"], "Resource": arn_of(logical)}
        )
        statements.append(
            {"Sid": "encryptStream", "Action": ["kms:GenerateDataKey"], "Resource": arn_of("Key")}
        )
    for read in s.read_streams:
        owner = stream_context(read)
        statements.append(
            {
                "Sid": f"read{camel(read)}",
                "Action": STREAM_READ_ACTIONS,
                "Resource": stack.arn("kinesis", owner, f"stream/{read}"),
            }
        )
        statements.append(
            {
                "Sid": f"decrypt{camel(read)}",
                "Action": ["kms:Decrypt"],
                "Resource": stack.arn("kms", owner, "key/*"),
                "Condition": {
                    "StringEquals": {"kms:ViaService": sub("kinesis.${AWS::Region}.amazonaws.com")}
                },
            }
        )
    return statements


_REPLICA_QUEUE_ACTIONS = [
    *_CONSUME_ACTIONS,
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:ListQueueTags",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
]

_REPLICA_RULE_ACTIONS = ["events:DeleteRule", "events:PutRule", "events:PutTargets", "events:RemoveTargets"]


def _replica_statements(stack: Stack, p: ServicePlan) -> list[Json]:
    """Each replica creates, stamps and deletes its own queues (and sweeps dead replicas'), its rules on
    the context's bus and its subscriptions to the topics (acr.topology.replicas)."""
    service = p.service
    statements: list[Json] = [
        {
            "Sid": "replicaQueues",
            "Action": _REPLICA_QUEUE_ACTIONS,
            "Resource": stack.arn("sqs", stack.context, f"acr-{service}-*"),
        },
        {"Sid": "findReplicaQueues", "Action": ["sqs:ListQueues"], "Resource": "*"},
    ]
    if p.routes:
        statements.append(
            {
                "Sid": "replicaRules",
                "Action": _REPLICA_RULE_ACTIONS,
                "Resource": stack.arn("events", stack.context, f"rule/{stack.bus}/{service}-*"),
            }
        )
    topics = sorted({d.topic for d in p.deliveries if d.topic})
    if topics:
        statements.append(
            {
                "Sid": "replicaSubscriptions",
                "Action": ["sns:ListSubscriptionsByTopic", "sns:Subscribe"],
                "Resource": [stack.arn("sns", topic_context(t), t) for t in topics],
            }
        )
        statements.append(
            {"Sid": "replicaUnsubscribe", "Action": ["sns:ListTopics", "sns:Unsubscribe"], "Resource": "*"}
        )
    return statements


def _rebuild_statements(stack: Stack, p: ServicePlan) -> list[Json]:
    """A service that rebuilds its read models (a replayed subscription, ``acr.projections``) creates and
    drops their copies (``<table>-g<n>``) and replays its own bus's archive to its rebuild rule."""
    if not any(r.replayed for r in p.routes) or not p.bus or not p.archive:
        return []
    copies = stack.arn("dynamodb", p.context, f"table/acr-{p.service}-*-g*")
    return [
        {
            "Sid": "projectionCopies",
            "Action": [
                *_ITEM_ACTIONS,
                "dynamodb:CreateTable",
                "dynamodb:DeleteTable",
                "dynamodb:DescribeTable",
            ],
            "Resource": copies,
        },
        {
            "Sid": "replayArchive",
            "Action": ["events:DescribeArchive", "events:StartReplay"],
            "Resource": stack.arn("events", p.context, f"archive/{p.archive.name}"),
        },
        {
            "Sid": "followReplays",
            "Action": ["events:DescribeReplay"],
            "Resource": stack.arn("events", p.context, "replay/*"),
        },
        {
            "Sid": "rebuildRule",
            "Action": ["events:DescribeEventBus", "events:DescribeRule"],
            "Resource": [arn_of("Bus"), stack.arn("events", p.context, f"rule/{p.bus}/*")],
        },
    ]


def _publish_statements(p: ServicePlan) -> list[Json]:
    if not p.producer_dlq:
        return []
    statements: list[Json] = [
        {
            "Sid": "producerDeadLetters",
            "Action": [
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            "Resource": arn_of(logical_queue(p.producer_dlq)),
        },
        {"Sid": "findTopics", "Action": ["sns:ListTopics"], "Resource": "*"},
        {
            "Sid": "outboxAge",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": OUTBOX_METRIC_NAMESPACE}},
        },
    ]
    if p.bus:
        statements.append(
            {
                "Sid": "publishOnBus",
                "Action": ["events:PutEvents"],
                "Resource": arn_of("Bus"),
                "Condition": {"StringEquals": {"events:source": producer_source(p.slice.context or "")}},
            }
        )
    if p.topics:
        topics = [ref("Topic" + camel(t.removeprefix("acr-"))) for t in p.topics]
        statements.append({"Sid": "publishOnTopic", "Action": ["sns:Publish"], "Resource": topics})
        statements.append(
            {
                "Sid": "encryptTopic",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": arn_of("Key"),
            }
        )
    return statements


def publishes_bus_from_outbox(p: ServicePlan) -> bool:
    """The service publishes on its bus from its outbox, so its stack offers the Pipes outbox
    (``OutboxRelay``): a Pipe may publish its bus rows; its topic rows stay with the polling relay."""
    return bool(p.bus) and p.slice.has_outbox


def _environment(stack: Stack, p: ServicePlan) -> list[Json]:
    values: dict[str, Any] = {
        "ACR_AWS_ENDPOINT_URL": "",
        "ACR_AWS_REGION": ref("AWS::Region"),
        "ACR_CITY": ref("City"),
        "ACR_CITY_CACHE_DIR": CITY_CACHE_DIR,
        "ACR_HOST": "0.0.0.0",
        "ACR_LOG_FORMAT": "json",
        "ACR_PORT": str(SERVICE_PORTS[p.service]),
        "ACR_SERVICE": p.service,
    }
    for peer, port in SERVICE_PORTS.items():
        if peer != p.service:
            values[f"ACR_{peer.replace('-', '_').upper()}_URL"] = sub(
                f"http://{peer}.${{ServiceDomain}}:{port}"
            )
    if publishes_bus_from_outbox(p):  # the kernel writes bus rows for the Pipe when the stack has one
        values["ACR_OUTBOX_RELAY"] = ref("OutboxRelay")
    topics = sorted({d.topic for d in p.deliveries if d.topic})
    if p.slice.per_replica and topics:  # each task subscribes itself to topics of other accounts
        arns = {
            t: f"arn:${{AWS::Partition}}:sns:${{AWS::Region}}:{stack.account(topic_context(t))}:{t}"
            for t in topics
        }
        values["ACR_TOPIC_ARNS"] = sub(json.dumps(arns, sort_keys=True))
    streams = [s for s in p.slice.read_streams if stream_context(s) != p.context]
    if streams:  # a stream of another account is read by its ARN
        owner = {s: stack.account(stream_context(s)) for s in streams}
        arns = {s: f"arn:${{AWS::Partition}}:kinesis:${{AWS::Region}}:{owner[s]}:stream/{s}" for s in streams}
        values["ACR_STREAM_ARNS"] = sub(json.dumps(arns, sort_keys=True))
    return [{"Name": k, "Value": v} for k, v in sorted(values.items())]


def _task_definition(stack: Stack, p: ServicePlan) -> None:
    name = camel(p.service)
    cpu, memory = TASK_SIZES.get(p.service, DEFAULT_TASK_SIZE)
    container: Json = {
        "Name": p.service,
        "Image": sub(
            "${ImageRegistryAccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/"
            f"${{ImageRepositoryPrefix}}/{p.service}:${{ImageTag}}"
        ),
        "Essential": True,
        "PortMappings": [{"ContainerPort": SERVICE_PORTS[p.service], "Protocol": "tcp"}],
        "Environment": _environment(stack, p),
        "ReadonlyRootFilesystem": True,
        "MountPoints": [
            {"SourceVolume": "tmp", "ContainerPath": "/tmp", "ReadOnly": False},
            {"SourceVolume": "cache", "ContainerPath": CACHE_DIR, "ReadOnly": False},
        ],
        "HealthCheck": {
            "Command": ["CMD", "python", "-m", "acr.serve", "--probe"],
            "Interval": 10,
            "Timeout": 5,
            "Retries": 5,
            "StartPeriod": 120,
        },
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref(f"{name}LogGroup"),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": p.service,
            },
        },
    }
    secrets = SECRETS.get(p.service, ())
    if secrets:
        container["Secrets"] = [
            {"Name": f"ACR_{s.replace('-', '_').upper()}", "ValueFrom": _secret_arn(p.service, s)}
            for s in secrets
        ]
    stack.add(
        f"{name}TaskDefinition",
        "AWS::ECS::TaskDefinition",
        {
            "Family": f"acr-{p.service}",
            "Cpu": cpu,
            "Memory": memory,
            "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            "ExecutionRoleArn": arn_of(f"{name}ExecutionRole"),
            "TaskRoleArn": arn_of(f"{name}TaskRole"),
            "ContainerDefinitions": [container],
            "Volumes": [{"Name": "tmp"}, {"Name": "cache"}],
        },
    )
