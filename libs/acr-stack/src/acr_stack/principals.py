"""Who is calling the embedded emulator, and whether a queue's policy lets them send to it.

Each service of the embedded stack signs its AWS calls with an access key id of its own
(``access_key_id``), which the emulator maps to the role the service runs as on AWS,
``arn:<partition>:iam::<account>:role/acr-<service>`` (``acr.topology.queue_policy.service_role``); any
other key is a user of the account. moto finds the account of a key among the keys its IAM issued, else
uses its default account: it issued none of these, so every process stays in the account it was in.

moto stores queue policies without evaluating them; ``allows_send`` evaluates the statements ACR's policies
use, as AWS does for a principal of the queue's own account: an explicit Deny refuses, anything else is
left to the caller's IAM policy, which the emulator does not have (so it allows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from acr.settings import SERVICE_PORTS
from acr.topology.queue_policy import service_role

KEY_PREFIX = "AKIAACR"
KEY_LENGTH = 20  # moto reads a key id from a request's signature only when it is 20 capitals and digits
SEND = "sqs:SendMessage"


def access_key_id(service: str) -> str:
    """The access key id ``service`` signs with in the embedded stack: ``AKIAACR`` and its name, padded."""
    key = (KEY_PREFIX + service.upper().replace("-", "")).ljust(KEY_LENGTH, "0")
    if len(key) != KEY_LENGTH or not key.isalnum():
        raise ValueError(f"no access key id fits {service!r}")
    return key


SERVICE_OF_KEY: dict[str, str] = {access_key_id(service): service for service in SERVICE_PORTS}


def principal_arn(queue_arn: str, access_key: str) -> str:
    """The principal behind ``access_key`` in the queue's account: a service's role, else a user."""
    service = SERVICE_OF_KEY.get(access_key)
    if service is not None:
        return service_role(queue_arn, service)
    _, partition, _, _, account, _ = queue_arn.split(":", 5)
    return f"arn:{partition}:iam::{account}:user/{access_key}"


def allows_send(policy: Mapping[str, Any], principal: str) -> bool:
    """False when a statement of the queue's ``policy`` denies ``sqs:SendMessage`` to ``principal``
    calling directly (so without an ``aws:SourceArn``)."""
    context = {"aws:PrincipalArn": principal}
    return not any(
        statement.get("Effect") == "Deny"
        and _names(statement.get("Action"), SEND)
        and _covers(statement.get("Principal"), principal)
        and _conditions_hold(statement.get("Condition", {}), context)
        for statement in _statements(policy)
    )


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _names(actions: Any, action: str) -> bool:
    return any(fnmatchcase(action.lower(), a.lower()) for a in _listed(actions))


def _covers(principal: Any, arn: str) -> bool:
    """A statement's ``Principal`` names ``arn``: ``*``, the ARN itself, or its account's root."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    account_root = arn.split(":role/")[0].split(":user/")[0] + ":root"
    return any(p in ("*", arn, account_root) for p in _listed(principal.get("AWS")))


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "ArnEquals": (fnmatchcase, False),
    "ArnLike": (fnmatchcase, False),
    "ArnNotEquals": (fnmatchcase, True),
    "ArnNotLike": (fnmatchcase, True),
    "StringEquals": (str.__eq__, False),
    "StringNotEquals": (str.__eq__, True),
}


def _conditions_hold(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    """Every key of every operator holds (AND). A key missing from the request matches a negated operator
    (nothing it holds is in the list) and no other; an operator this evaluator does not know never holds."""
    for operator, tests in condition.items():
        if operator not in _OPERATORS:
            return False
        match, negated = _OPERATORS[operator]
        for key, values in tests.items():
            value = context.get(key)
            found = value is not None and any(match(value, v) for v in _listed(values))
            if found == negated:
                return False
    return True
