"""Who may send to a consumer's queue: the rules and topics that feed it, and ACR's own direct sends.

A queue's policy allows ``sqs:SendMessage`` from EventBridge for the rules that target it and from SNS for
the topic it subscribes to (``aws:SourceArn``), and from the one principal whose code sends to it directly:
the consuming service (a parked message sent again with a delay, a dead letter, its own ``/v1/ops/dlq``
redrive sending dead letters back). Everyone else is denied, even a principal of the account whose own IAM
policy would allow it. ``apply``, the exported stacks and the per-replica queues build their policies here;
the values are ARNs, or CloudFormation expressions of ARNs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EVENTBRIDGE = "events.amazonaws.com"
SNS = "sns.amazonaws.com"


@dataclass(frozen=True)
class Feed:
    """An AWS service that delivers to the queue on behalf of one resource (a rule, a topic)."""

    service: str
    source_arn: Any


def service_role(queue_arn: str, service: str) -> str:
    """The role an ACR service runs as in the queue's account: ``acr-<service>`` (the exported stacks name
    each task role so; the embedded emulator maps each service's access key to it)."""
    _, partition, _, _, account, _ = queue_arn.split(":", 5)
    return f"arn:{partition}:iam::{account}:role/acr-{service}"


def queue_policy(queue_arn: Any, feeds: Sequence[Feed], principals: Sequence[Any]) -> dict[str, Any]:
    """Allow ``feeds`` and ``principals`` to send to the queue; deny ``sqs:SendMessage`` to everyone else."""
    statements: list[dict[str, Any]] = []
    for service in sorted({feed.service for feed in feeds}):
        statements.append(
            {
                "Sid": "deliverFrom" + service.split(".")[0].capitalize(),
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": [f.source_arn for f in feeds if f.service == service]}
                },
            }
        )
    if principals:
        statements.append(
            {
                "Sid": "acrSends",
                "Effect": "Allow",
                "Principal": {"AWS": list(principals)},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            }
        )
    others: dict[str, Any] = {}
    if feeds:
        others["aws:SourceArn"] = [feed.source_arn for feed in feeds]
    if principals:
        others["aws:PrincipalArn"] = list(principals)
    deny: dict[str, Any] = {
        "Sid": "noOneElse",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
    }
    if others:
        deny["Condition"] = {"ArnNotEquals": others}
    return {"Version": "2012-10-17", "Statement": [*statements, deny]}
