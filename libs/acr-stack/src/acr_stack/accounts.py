"""One emulator account per bounded context (``ACR_ACCOUNTS=multi``): which account each context gets,
which account each service's calls are made in, and the ARNs by which a service names what lives in
another context's account.

Every process signs with a key of its own (``acr_stack.principals``); the emulator is started with
``--accounts`` mapping each service's key to its context's account (``key_accounts``), so a service calls
AWS in its own account with no setting of its own, as an ECS task does with its task role. The stacks of
the accounts are deployed by ``acr_stack.account_stacks``.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from acr.settings import SERVICE_PORTS
from acr.topology.model import discover
from acr.topology.plan import ServicePlan, plan
from acr_stack.principals import access_key_id

SINGLE, MULTI = "single", "multi"
FIRST_ACCOUNT = 100_000_000_001
REGION = "us-east-1"
PARTITION = "aws"


def parse_accounts(setting: str) -> str:
    """``ACR_ACCOUNTS``: ``single`` (the default, also when empty) or ``multi``."""
    value = setting.strip().lower() or SINGLE
    if value not in (SINGLE, MULTI):
        raise ValueError(f"expected {SINGLE} or {MULTI}")
    return value


def plans() -> list[ServicePlan]:
    return plan(discover())


def layout(service_plans: list[ServicePlan]) -> dict[str, str]:
    """Context -> its emulator account id: 100000000001, 100000000002... in the order of the names."""
    contexts = sorted({p.context for p in service_plans})
    return {context: str(FIRST_ACCOUNT + n) for n, context in enumerate(contexts)}


def key_accounts(service_plans: list[ServicePlan], accounts: dict[str, str]) -> dict[str, str]:
    """Each service's access key id -> the account of its context (the emulator's ``--accounts``)."""
    context_of = {p.service: p.context for p in service_plans}
    return {access_key_id(s): accounts[context_of[s]] for s in SERVICE_PORTS if s in context_of}


def resource_arns(service_plans: list[ServicePlan], accounts: dict[str, str]) -> dict[str, str]:
    """``ACR_TOPIC_ARNS`` and ``ACR_STREAM_ARNS`` for the services: every topic and stream, by name, with
    the ARN in its owner's account (a service of another account names it so)."""
    topics: dict[str, str] = {}
    streams: dict[str, str] = {}
    for p in service_plans:
        account = accounts[p.context]
        topics |= {t: f"arn:{PARTITION}:sns:{REGION}:{account}:{t}" for t in p.topics}
        streams |= {s.name: f"arn:{PARTITION}:kinesis:{REGION}:{account}:stream/{s.name}" for s in p.streams}
    return {"ACR_TOPIC_ARNS": json.dumps(topics), "ACR_STREAM_ARNS": json.dumps(streams)}


def client_in(endpoint: str, account: str, service: str) -> Any:
    """A client of the emulator whose every request is made in ``account`` (``x-moto-account-id``)."""
    client = boto3.session.Session().client(  # type: ignore[call-overload]  # service known at run time
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign.*.*", add_header)
    return client
