"""boto3 clients built from settings: the only place that knows whether we talk to moto, LocalStack or AWS."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

from acr.secrets import SECRET_SETTINGS, SECRETS_MANAGER, WeakSecret
from acr.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=3,
    read_timeout=30,
    max_pool_connections=32,
)


@overload
def client(service: Literal["dynamodb"], settings: Settings) -> DynamoDBClient: ...
@overload
def client(service: Literal["sqs"], settings: Settings) -> SQSClient: ...
@overload
def client(service: Literal["sns"], settings: Settings) -> SNSClient: ...
@overload
def client(service: Literal["events"], settings: Settings) -> EventBridgeClient: ...
@overload
def client(service: Literal["kinesis"], settings: Settings) -> KinesisClient: ...
@overload
def client(service: str, settings: Settings) -> Any: ...
def client(service: str, settings: Settings) -> Any:
    """A boto3 client for ``service`` at the configured endpoint (dummy credentials for emulators)."""
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": _CONFIG}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.session.Session().client(service, **kwargs)  # type: ignore[call-overload]  # service is only known at run time here


MakeClient = Callable[[str], Any]
"""Builds a client by service name: ``lambda name: client(name, settings)``, or a test's stand-in."""


def resolve_secrets(
    settings: Settings, held: Collection[str] = SECRET_SETTINGS, make_client: MakeClient | None = None
) -> Settings:
    """``settings`` with every ``secretsmanager:<secret id or ARN>`` secret read from AWS Secrets Manager
    (the task role needs ``secretsmanager:GetSecretValue`` on it); raises ``WeakSecret`` when one of the
    secrets ``held`` is weak outside the embedded stack. Nothing is asked of AWS when no secret names
    Secrets Manager."""
    refs = {
        name: value.removeprefix(SECRETS_MANAGER)
        for name in SECRET_SETTINGS
        if (value := getattr(settings, name)).startswith(SECRETS_MANAGER)
    }
    if refs:
        manager = (make_client or (lambda name: client(name, settings)))("secretsmanager")
        read = {name: str(manager.get_secret_value(SecretId=i)["SecretString"]) for name, i in refs.items()}
        settings = settings.model_copy(update=read)
    problems = settings.weak_secrets(held)
    if problems:
        raise WeakSecret("refusing to start: " + "; ".join(problems))
    return settings
