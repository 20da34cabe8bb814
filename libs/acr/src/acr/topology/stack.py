"""What every context's template is built on: the ``Stack`` being filled in, the intrinsic functions, the
logical ids of the plan's resources and the IAM document helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from acr.catalog import SPECS
from acr.catalog.base import bus_name
from acr.topology.plan import Delivery, Queue, ServicePlan

Json = dict[str, Any]

STREAM_READ_ACTIONS = [
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
]


def camel(name: str) -> str:
    """``acr-car-dispatcher-events.fifo`` -> ``AcrCarDispatcherEventsFifo`` (a logical id's part)."""
    parts = name.replace(".", "-").replace("_", "-").split("-")
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


def account_parameter(context: str) -> str:
    return f"{camel(context)}AccountId"


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def ref(name: str) -> Json:
    return {"Ref": name}


def arn_of(logical: str) -> Json:
    return {"Fn::GetAtt": [logical, "Arn"]}


def skip(checkov: tuple[tuple[str, str], ...] = (), cfn_lint: tuple[tuple[str, str], ...] = ()) -> Json:
    """Metadata that records, next to the resource, which checks do not apply and why."""
    metadata: Json = {}
    if checkov:
        metadata["checkov"] = {"skip": [{"id": check, "comment": reason} for check, reason in checkov]}
    if cfn_lint:
        metadata["cfn-lint"] = {
            "config": {"ignore_checks": [check for check, _ in cfn_lint]},
            "reasons": dict(cfn_lint),
        }
    return metadata


@dataclass
class Stack:
    """One context's template, filled in by the functions below."""

    context: str
    plans: list[ServicePlan]
    everyone: list[ServicePlan]
    parameters: dict[str, Json] = field(default_factory=dict)
    conditions: dict[str, Json] = field(default_factory=dict)
    resources: dict[str, Json] = field(default_factory=dict)
    outputs: dict[str, Json] = field(default_factory=dict)

    def account(self, context: str) -> str:
        """``${...}`` of a context's account id inside ``Fn::Sub`` (a parameter unless it is this one)."""
        if context == self.context:
            return "${AWS::AccountId}"
        name = account_parameter(context)
        self.parameters[name] = {
            "Type": "String",
            "AllowedPattern": "^[0-9]{12}$",
            "Description": f"The AWS account of the {context} context.",
        }
        return "${" + name + "}"

    def arn(self, service: str, context: str, resource: str) -> Json:
        return sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:{self.account(context)}:{resource}")

    def root(self, context: str) -> Json:
        return sub(f"arn:${{AWS::Partition}}:iam::{self.account(context)}:root")

    def add(self, logical: str, kind: str, properties: Json, **extra: Any) -> str:
        if logical in self.resources:
            raise ValueError(f"two resources named {logical} in the {self.context} stack")
        self.resources[logical] = {"Type": kind, **extra, "Properties": properties}
        return logical

    @property
    def bus(self) -> str:
        return bus_name(self.context)

    @property
    def publishes_on_bus(self) -> bool:
        return any(p.bus for p in self.plans)

    @property
    def forwards(self) -> list[tuple[ServicePlan, Delivery]]:
        """Deliveries of other contexts' services that subscribe to this context's bus."""
        return [
            (p, d)
            for p in self.everyone
            if p.context != self.context
            for d in p.deliveries
            if any(r.producer == self.context for r in d.routes)
        ]

    @property
    def local_deliveries(self) -> list[tuple[ServicePlan, Delivery]]:
        return [(p, d) for p in self.plans for d in p.deliveries if d.routes]

    @property
    def has_bus(self) -> bool:
        return self.publishes_on_bus or bool(self.local_deliveries)

    def template(self) -> Json:
        services = ", ".join(p.service for p in self.plans)
        document: Json = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"ACR {self.context} context ({services}): written by `acr-topology export`, "
            "do not edit (docs/deploy.md).",
            "Parameters": dict(sorted(self.parameters.items())),
        }
        if self.conditions:
            document["Conditions"] = self.conditions
        document["Resources"] = self.resources
        if self.outputs:
            document["Outputs"] = self.outputs
        return document


def logical_table(name: str) -> str:
    return "Table" + camel(name.removeprefix("acr-"))


def logical_queue_name(name: str) -> str:
    return "Queue" + camel(name.removeprefix("acr-"))


def logical_queue(queue: Queue) -> str:
    return logical_queue_name(queue.name)


def topic_context(topic: str) -> str:
    return next(s.context for s in SPECS if s.destination.kind == "topic" and s.destination.name == topic)


def stream_context(stream: str) -> str:
    return next(s.context for s in SPECS if s.destination.kind == "stream" and s.destination.name == stream)


def trust(service: str) -> Json:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
            }
        ],
    }


def policy(statements: list[Json]) -> Json:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}


def unique(items: list[Json]) -> list[Json]:
    seen: dict[str, Json] = {}
    for item in items:
        seen.setdefault(json.dumps(item, sort_keys=True), item)
    return [seen[k] for k in sorted(seen)]
