"""The exported CloudFormation stacks deployed through the emulator's CloudFormation, each into its context's
account (``acr_stack.accounts``), as they are deployed to AWS account by account (docs/deploy.md).

``python -m acr_stack.account_stacks deploy`` is the stack's topology step with ``ACR_ACCOUNTS=multi``
(``acr-topology apply`` in the single account). moto's CloudFormation accepts every resource type of the
templates but some it creates not at all, and one it fails on (``NOT_CREATED``, ``LEFT_OUT``); ``fill_in``
creates the policies and archives among them with the API calls CloudFormation would make, so that the
emulator enforces the queue policies (``acr_stack.principals``) and read models can be rebuilt from the
archives. Alarms, schema registries and Pipes have no effect on the emulator and are left out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from acr.topology.cloudformation import templates
from acr.topology.plan import ServicePlan
from acr.topology.stack import account_parameter
from acr_stack.accounts import PARTITION, REGION, client_in, layout, plans

PLACEHOLDERS = {  # what the embedded stack runs without: its services are local processes, not ECS tasks
    "SubnetIds": "subnet-0acr0000000000001",
    "VpcId": "vpc-0acr0000000000001",
    "ImageTag": "embedded",
    "ImageRegistryAccountId": "000000000000",
}
FILLED_IN = (
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::Kinesis::ResourcePolicy",
    "AWS::Events::Archive",
)
LEFT_OUT = ("AWS::Events::Archive",)
"""Types moto's CloudFormation fails on (it hands an archive's ``EventPattern`` object to a JSON parser that
takes a string only): removed from the stack sent to it and made by ``fill_in`` instead."""
NOT_CREATED = (  # by moto 5.2's CloudFormation: ``fill_in`` makes the first four, the rest has no effect here
    *FILLED_IN,
    "AWS::CloudWatch::Alarm",
    "AWS::EventSchemas::Registry",
    "AWS::EventSchemas::Schema",
    "AWS::Pipes::Pipe",
)
Json = dict[str, Any]


def deploy(endpoint: str, service_plans: list[ServicePlan] | None = None) -> list[str]:
    """Create every context's stack in its account, then ``fill_in`` what CloudFormation did not; returns a
    line per stack."""
    service_plans = plans() if service_plans is None else service_plans
    accounts = layout(service_plans)
    done = []
    for context, template in templates(service_plans).items():
        account = accounts[context]
        make = partial(client_in, endpoint, account)
        cloudformation = make("cloudformation")
        parameters = stack_parameters(template, accounts)
        name = f"acr-{context}"
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=json.dumps(without(template, LEFT_OUT)),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if status != "CREATE_COMPLETE":
            raise RuntimeError(f"stack {name} in account {account}: {status}")
        physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        }
        filled = fill_in(template, Resolver(template, parameters, physical, account), make)
        done.append(f"stack {name} in account {account}: {len(physical)} resources, {filled} filled in")
    return done


def without(template: Json, kinds: tuple[str, ...]) -> Json:
    """``template`` without its resources of ``kinds`` (nothing refers to them)."""
    resources = {k: r for k, r in template["Resources"].items() if r["Type"] not in kinds}
    return template | {"Resources": resources}


def stack_parameters(template: Json, accounts: dict[str, str]) -> dict[str, str]:
    """The parameters without a default: the other contexts' accounts, and the placeholders."""
    by_parameter = {account_parameter(context): account for context, account in accounts.items()}
    values = {}
    for name, declared in template.get("Parameters", {}).items():
        if name in by_parameter:
            values[name] = by_parameter[name]
        elif "Default" not in declared:
            values[name] = PLACEHOLDERS[name]
    return values


class Resolver:
    """Resolves the intrinsic functions the policies use (``Ref``, ``Fn::GetAtt`` of an ARN, ``Fn::Sub``)
    against a created stack: its parameters and the physical ids of its resources."""

    ARNS = {  # how an ARN is made of a physical id, by resource type
        "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{name}",
        "AWS::IAM::Role": "arn:{partition}:iam::{account}:role/{name}",
        "AWS::Events::EventBus": "arn:{partition}:events:{region}:{account}:event-bus/{name}",
        "AWS::Kinesis::Stream": "arn:{partition}:kinesis:{region}:{account}:stream/{name}",
        "AWS::KMS::Key": "arn:{partition}:kms:{region}:{account}:key/{name}",
    }

    def __init__(self, template: Json, parameters: dict[str, str], physical: dict[str, str], account: str):
        self.template, self.physical, self.account = template, physical, account
        defaults = {k: str(v["Default"]) for k, v in template.get("Parameters", {}).items() if "Default" in v}
        self.values = (
            defaults
            | parameters
            | {
                "AWS::AccountId": account,
                "AWS::Region": REGION,
                "AWS::Partition": PARTITION,
            }
        )

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
            return self.arn(value["Fn::GetAtt"][0])
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"])
        if any(key.startswith("Fn::") for key in value):
            raise ValueError(f"cannot resolve {value} (only Ref, Fn::GetAtt of Arn and Fn::Sub)")
        return {k: self(v) for k, v in value.items()}

    def ref(self, name: str) -> str:
        return self.values[name] if name in self.values else self.physical[name]

    def arn(self, logical: str) -> str:
        """The resource's ARN: its physical id when that is one (moto's topics), else made of the physical id
        (a queue's is its URL, whose last part is the name) or, where moto reports none (its buses), of the
        ``Name`` the template gives it."""
        resource = self.template["Resources"][logical]
        physical = self.physical.get(logical) or resource["Properties"].get("Name", "")
        if not physical:
            raise ValueError(f"no physical id or name for {logical}")
        if physical.startswith("arn:"):
            return physical
        kind = resource["Type"]
        name = physical.rsplit("/", 1)[-1]
        return self.ARNS[kind].format(partition=PARTITION, region=REGION, account=self.account, name=name)

    def _sub(self, name: str) -> str:
        if name.endswith(".Arn"):
            return self.arn(name.removesuffix(".Arn"))
        if ":" in name and not name.startswith("AWS::"):
            return "${" + name + "}"  # an IAM policy variable, e.g. ${aws:PrincipalAccount}
        return self.ref(name)


def fill_in(template: Json, resolve: Resolver, make: Callable[[str], Any]) -> int:
    """Queue, bus and stream policies and archives, made with the calls CloudFormation would make; returns
    how many."""
    resources = [  # a resource with a condition is one of the Pipes option's
        r for r in template["Resources"].values() if r["Type"] in FILLED_IN and "Condition" not in r
    ]
    sqs, events, kinesis = make("sqs"), make("events"), make("kinesis")
    buses: dict[str, list[Json]] = {}
    count = 0
    for resource in resources:
        properties = resolve(resource["Properties"])
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            for url in properties["Queues"]:
                sqs.set_queue_attributes(
                    QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
                )
        elif resource["Type"] == "AWS::Events::EventBusPolicy":
            buses.setdefault(properties["EventBusName"], []).append(properties["Statement"])
        elif resource["Type"] == "AWS::Events::Archive":
            events.create_archive(
                ArchiveName=properties["ArchiveName"],
                EventSourceArn=properties["SourceArn"],
                Description=properties.get("Description", ""),
                EventPattern=json.dumps(properties["EventPattern"]),
                RetentionDays=properties.get("RetentionDays", 0),
            )
        elif resource["Type"] == "AWS::Kinesis::ResourcePolicy":
            kinesis.put_resource_policy(
                ResourceARN=properties["ResourceArn"], Policy=json.dumps(properties["ResourcePolicy"])
            )
        count += 1
    for bus, statements in buses.items():
        policy = {"Version": "2012-10-17", "Statement": statements}
        events.put_permission(EventBusName=bus, Policy=json.dumps(policy))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acr_stack.account_stacks", description=__doc__)
    parser.add_argument("command", choices=["deploy", "layout"])
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566")
    args = parser.parse_args(argv)
    if args.command == "layout":
        print(json.dumps(layout(plans()), indent=2))  # noqa: T201
        return 0
    for line in deploy(args.endpoint):
        print(line)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
