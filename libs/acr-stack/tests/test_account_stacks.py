"""The stacks' policies that moto's CloudFormation skips are made from the template: its intrinsic functions
resolved against what the stack created."""

from __future__ import annotations

import pytest

from acr_stack.account_stacks import Resolver, stack_parameters

TEMPLATE = {
    "Parameters": {"RideAccountId": {"Type": "String"}, "City": {"Type": "String", "Default": "full"}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "TaskRole": {"Type": "AWS::IAM::Role"},
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "acr-payment"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
    },
}
PHYSICAL = {  # as moto's CloudFormation reports them: a queue's URL, a topic's ARN, no id for a bus
    "Queue": "http://127.0.0.1:4566/100000000006/acr-payment-events",
    "TaskRole": "acr-payment",
    "Bus": "",
    "Topic": "arn:aws:sns:us-east-1:100000000006:acr-payment-news",
}


def test_refs_arns_and_subs_resolve_against_the_created_stack() -> None:
    resolve = Resolver(TEMPLATE, {"RideAccountId": "100000000008"}, PHYSICAL, "100000000006")
    policy = {
        "Queues": [{"Ref": "Queue"}],
        "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
        "Principal": {"AWS": [{"Fn::GetAtt": ["TaskRole", "Arn"]}]},
        "From": {"Fn::Sub": "arn:${AWS::Partition}:iam::${RideAccountId}:root"},
        "Rule": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/b/*"},
        "Bus": {"Fn::Sub": "${Bus.Arn}"},
        "Topic": {"Fn::GetAtt": ["Topic", "Arn"]},
        "Creator": {"Fn::Sub": "${aws:PrincipalAccount}"},
        "City": {"Ref": "City"},
    }
    assert resolve(policy) == {
        "Queues": [PHYSICAL["Queue"]],
        "Resource": "arn:aws:sqs:us-east-1:100000000006:acr-payment-events",
        "Principal": {"AWS": ["arn:aws:iam::100000000006:role/acr-payment"]},
        "From": "arn:aws:iam::100000000008:root",
        "Rule": "arn:aws:events:us-east-1:100000000006:rule/b/*",
        "Bus": "arn:aws:events:us-east-1:100000000006:event-bus/acr-payment",
        "Topic": PHYSICAL["Topic"],
        "Creator": "${aws:PrincipalAccount}",
        "City": "full",
    }


def test_an_intrinsic_it_does_not_know_is_refused_not_passed_through() -> None:
    resolve = Resolver(TEMPLATE, {}, PHYSICAL, "100000000006")
    with pytest.raises(ValueError, match="cannot resolve"):
        resolve({"Fn::If": ["UsePipes", "a", "b"]})
    with pytest.raises(ValueError, match="cannot resolve"):
        resolve({"Fn::GetAtt": ["Queue", "QueueName"]})


def test_the_parameters_are_the_other_accounts_and_placeholders_for_what_runs_locally() -> None:
    template = {
        "Parameters": {
            "RideAccountId": {"Type": "String"},
            "VpcId": {"Type": "String"},
            "City": {"Type": "String", "Default": "full"},
        }
    }
    assert stack_parameters(template, {"ride": "100000000008", "payment": "100000000006"}) == {
        "RideAccountId": "100000000008",
        "VpcId": "vpc-0acr0000000000001",
    }
