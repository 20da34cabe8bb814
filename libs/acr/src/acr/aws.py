"""boto3 clients built from settings: the only place that knows whether we talk to moto, LocalStack or AWS."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from acr.settings import Settings, get_settings

_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=3,
    read_timeout=30,
    max_pool_connections=32,
)


def client(service: str, settings: Settings | None = None) -> Any:
    """A boto3 client for ``service`` at the configured endpoint (dummy credentials for emulators)."""
    settings = settings or get_settings()
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": _CONFIG}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.session.Session().client(service, **kwargs)
