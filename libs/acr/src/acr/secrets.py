"""The rules every secret setting obeys outside the embedded stack (docs/security.md, "Secrets").

The embedded stack (services on a loopback AWS emulator) may run on the well-known development values;
anywhere else a known default, a value from the deny-list or one shorter than ``MIN_SECRET_BYTES`` bytes
would let anyone who read the repository mint tokens or drive the ops API, so the service refuses to
start. A value ``secretsmanager:<secret id or ARN>`` is read from AWS Secrets Manager at start
(``acr.aws.resolve_secrets``) and checked then.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

SECRET_SETTINGS = ("ops_token", "token_secret", "token_previous_secrets")
SECRETS_MANAGER = "secretsmanager:"
MIN_SECRET_BYTES = 32
DEV_OPS_TOKEN = "dev-ops-token"
DEV_TOKEN_SECRET = "dev-token-secret-for-the-embedded-stack"  # 32 bytes at least: HS256's key length
OLD_TOKEN_SECRET = "dev-token-secret-change-me"  # the default before #14: anyone could mint tokens with it
KNOWN_SECRETS = frozenset(
    {DEV_OPS_TOKEN, DEV_TOKEN_SECRET, OLD_TOKEN_SECRET, "changeme", "change-me", "secret", "password"}
)


def is_loopback_endpoint(endpoint_url: str) -> bool:
    """An AWS endpoint on this machine's loopback (the embedded emulator, or a fault proxy in front of
    it): the embedded stack. Empty (real AWS) or any other host (a LocalStack container) is not."""
    host = urlsplit(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_problem(value: str) -> str | None:
    """Why ``value`` is no usable secret outside the embedded stack, or None when it is."""
    if value.strip().lower() in KNOWN_SECRETS:
        return "is a known default value"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def secret_values(setting: str, value: str) -> list[str]:
    """The secrets one setting holds: ``token_previous_secrets`` is a comma-separated list."""
    if setting == "token_previous_secrets":
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


class WeakSecret(RuntimeError):
    """A service was about to start outside the embedded stack with a weak secret."""
