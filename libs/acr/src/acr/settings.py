"""Settings shared by every service, read from ``ACR_*`` environment variables (fail fast on bad values)."""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from functools import lru_cache
from typing import Literal

from pydantic import Field, HttpUrl, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from acr.secrets import (
    DEV_OPS_TOKEN,
    DEV_TOKEN_SECRET,
    MIN_SECRET_BYTES,
    SECRET_SETTINGS,
    SECRETS_MANAGER,
    is_loopback_endpoint,
    secret_problem,
    secret_values,
)

SERVICE_PORTS: dict[str, int] = {
    "bff": 8000,
    "ride-manager": 8001,
    "address-finder": 8002,
    "car-dispatcher": 8003,
    "route-monitor": 8004,
    "payment": 8005,
    "reward": 8006,
    "car-simulator": 8007,
}


def _default_url(service: str) -> str:
    return f"http://127.0.0.1:{SERVICE_PORTS[service]}"


class Settings(BaseSettings):
    """Every knob of ACR. The embedded defaults need nothing but a moto server on 127.0.0.1:4566."""

    model_config = SettingsConfigDict(env_prefix="ACR_", extra="ignore", frozen=True)

    # AWS: an endpoint URL selects an emulator (moto, LocalStack); empty means real AWS.
    aws_endpoint_url: str = "http://127.0.0.1:4566"
    aws_region: str = "us-east-1"

    # Where the other services answer.
    bff_url: HttpUrl = Field(default=HttpUrl(_default_url("bff")))
    ride_manager_url: HttpUrl = Field(default=HttpUrl(_default_url("ride-manager")))
    address_finder_url: HttpUrl = Field(default=HttpUrl(_default_url("address-finder")))
    car_dispatcher_url: HttpUrl = Field(default=HttpUrl(_default_url("car-dispatcher")))
    route_monitor_url: HttpUrl = Field(default=HttpUrl(_default_url("route-monitor")))
    payment_url: HttpUrl = Field(default=HttpUrl(_default_url("payment")))
    reward_url: HttpUrl = Field(default=HttpUrl(_default_url("reward")))
    car_simulator_url: HttpUrl = Field(default=HttpUrl(_default_url("car-simulator")))

    # The city and the fleet every service agrees on.
    seed: int = 42
    fleet_size: int = Field(default=200, ge=1, le=100_000)
    city: str = "small"
    city_cache_dir: str | None = None

    # Security (docs/security.md). The development defaults work in the embedded stack only: elsewhere a
    # service refuses to start with a known or short secret (``weak_secrets``). ``secretsmanager:<id>``
    # reads a secret from AWS Secrets Manager at start.
    ops_token: str = Field(default=DEV_OPS_TOKEN, min_length=8)
    token_secret: str = Field(default=DEV_TOKEN_SECRET, min_length=16)
    token_previous_secrets: str = ""  # comma-separated: rider tokens signed with these still verify
    token_ttl_s: int = Field(default=86_400, gt=0)
    # An external OpenID Connect issuer whose ID tokens the BFF also accepts (e.g. a Cognito user pool).
    oidc_issuer: str = Field(default="", pattern=r"^(https?://\S+)?$")
    oidc_audience: str = ""
    oidc_jwks_url: str = Field(default="", pattern=r"^(https?://\S+)?$")  # empty: OIDC discovery
    # Service identity (acr.identity): this service's Ed25519 private key and every service's public keys
    # (JSON ``{"<service>": ["<key>", ...]}``, a key or a list), base64url; tokens live service_token_ttl_s.
    service_key: str = ""
    service_public_keys: dict[str, list[str]] = Field(default_factory=dict)
    service_token_ttl_s: int = Field(default=60, gt=0, le=300)

    # Durations (docs/architecture.md, "Durations").
    quote_ttl_s: float = Field(default=300, gt=0)
    dispatch_timeout_s: float = Field(default=30, gt=0)
    boarding_s: float = Field(default=60, ge=0)
    stall_window_s: float = Field(default=120, gt=0)
    max_pickup_eta_s: float = Field(default=900, gt=0)
    dedup_window_s: float = Field(default=86_400, gt=0)
    eta_push_s: float = Field(default=2, gt=0)
    sim_speed: float = Field(default=30, gt=0)
    idempotency_key_ttl_s: float = Field(default=86_400, gt=0)

    # Ride deadlines (issue #12): ride-manager's watchdog ends every ride (docs/architecture.md, "Durations").
    ride_grace_s: float = Field(default=120, gt=0)  # wall, added to each phase's expected duration
    trip_deadline_factor: float = Field(default=2, ge=1)  # times the quoted trip duration
    payment_deadline_s: float = Field(default=60, gt=0)  # wall: COMPLETED asks payment again after this
    assignment_wait_s: float = Field(default=600, ge=0)  # wall: longest wait for a CarAssigned the fleet sent
    watchdog_settle_s: float = Field(default=30, ge=0)  # wall: no deadline acted on this soon after a restart

    # Messaging loops.
    sqs_wait_s: int = Field(default=20, ge=0, le=20)  # long polls (AWS's longest): a message ends one at once
    sqs_visibility_timeout_s: int = Field(default=30, ge=1)
    max_receives: int = Field(default=10, ge=2)
    relay_poll_s: float = Field(default=15.0, gt=0)  # woken by each commit; polls for expired leases
    relay_lease_s: float = Field(default=30.0, gt=0)
    outbox_sent_retention_s: float = Field(default=300.0, gt=0)
    # Where DynamoDB TTL never runs (an emulator), expired items are deleted by a sweep this often.
    sweep_s: float = Field(default=60.0, gt=0)

    # The outbox relay (docs/deploy.md, "The outbox relay: polling or Pipes"): ``pipes`` leaves bus rows to
    # the exported stacks' DynamoDB stream + EventBridge Pipe (AWS only); topic rows stay with the relay.
    outbox_relay: Literal["polling", "pipes"] = "polling"

    @field_validator("outbox_relay")
    @classmethod
    def _pipes_only_on_aws(cls, value: str, info: ValidationInfo) -> str:
        if value == "pipes" and info.data.get("aws_endpoint_url"):
            raise ValueError(
                "ACR_OUTBOX_RELAY=pipes needs AWS (ACR_AWS_ENDPOINT_URL empty): only the exported stacks "
                "create the Pipes, an emulator has none and the bus events would never leave the outbox"
            )
        return value

    # Payment (issue #12): how often the reconciler settles payments whose outcome is unknown.
    payment_reconcile_s: float = Field(default=5.0, gt=0)

    # Restart-safe cars (issue #12): car-simulator saves a progressing car (driving, boarding) at least this
    # often (wall seconds) besides each phase change, so a restart repeats at most this much of its drive.
    car_save_every_s: float = Field(default=15.0, gt=0)

    # Fault injection (off unless named): "publish.lost_ack=0.2,deliver.duplicate=0.1", seeded.
    faults: str = ""
    faults_seed: int = 0

    # Kernel resilience (issue #12): a retryable publish failure waits on its outbox row, backing off
    # exponentially with jitter up to this long, and is never dead-lettered.
    relay_max_backoff_s: float = Field(default=30.0, gt=0)

    # Chaos controls (issue #12): the BFF's /ops/chaos routes exist only with ACR_CHAOS on and an emulator
    # endpoint (never in AWS mode); outages go to the fault proxy of the embedded stack, whose control API
    # acr-stack passes in ACR_CHAOS_CONTROL_URL.
    chaos: bool = False
    chaos_control_url: str = Field(default="", pattern=r"^(https?://\S+)?$")

    # Replicas (issue #13): every process has a name of its own (acr-stack sets ``<service>-<n>``; elsewhere
    # the host and pid); leases name their owner by it and expire ``lease_s`` after their last renewal.
    replica: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1)
    lease_s: float = Field(default=10.0, gt=0)
    # Every process of every service, by service and replica name (JSON, e.g. {"bff": {"bff-1":
    # "http://127.0.0.1:20001"}}): acr-stack sets it for the BFF's /ops/replicas; empty elsewhere, where
    # the BFF lists one process per service URL.
    replica_urls: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Topics of other accounts that a per-replica service subscribes its own queues to, as JSON
    # ``{"<topic>": "<arn>"}`` (the exported stacks set it): ``sns:ListTopics`` lists the own account's only.
    topic_arns: dict[str, str] = Field(default_factory=dict)
    # Streams of other accounts a service reads, as JSON ``{"<stream>": "<arn>"}`` (issue #15): the readers
    # name such a stream by its ARN (the stream's resource policy lets the reader's account in).
    stream_arns: dict[str, str] = Field(default_factory=dict)

    # Bounded clients (issue #14, docs/security.md "Bounded clients"): kept per process (per replica).
    max_body_bytes: int = Field(default=65_536, ge=1024)  # every service: larger request bodies get a 413
    max_active_rides: int = Field(default=3, ge=1)  # ride-manager: rides of one rider not yet ended
    ws_per_rider: int = Field(default=5, ge=1)  # BFF: open push sockets of one rider
    ws_per_address: int = Field(default=500, ge=1)  # BFF: open push sockets from one client address
    signups_per_minute: float = Field(default=6, gt=0)  # BFF: sign-ups per client address...
    signup_burst: int = Field(default=20, ge=1)  # ...with bursts of this many
    ops_guesses: int = Field(
        default=10, ge=1
    )  # BFF: wrong X-Ops-Token guesses per address, one back a minute

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint_is_url_or_empty(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("ACR_AWS_ENDPOINT_URL must be an http(s) URL or empty for real AWS")
        return value

    @field_validator("service_public_keys", mode="before")
    @classmethod
    def _key_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("service_key")
    @classmethod
    def _a_private_key(cls, value: str) -> str:
        from acr.identity import public_key_of

        if value:
            public_key_of(value)
        return value

    @field_validator("service_public_keys")
    @classmethod
    def _public_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from acr.identity import key_id

        for keys in value.values():
            for key in keys:
                key_id(key)
        return value

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: str) -> str:
        from acr.faults import parse

        parse(value)
        return value

    @property
    def embedded(self) -> bool:
        """The embedded stack: the AWS endpoint is an emulator on this machine's loopback."""
        return is_loopback_endpoint(self.aws_endpoint_url)

    def weak_secrets(self, held: Collection[str] = SECRET_SETTINGS) -> list[str]:
        """Why a service holding the secret settings ``held`` must not start, one line per weak secret
        (empty in the embedded stack; a ``secretsmanager:`` reference is checked once read)."""
        if self.embedded:
            return []
        problems = []
        for setting in held:
            value = getattr(self, setting)
            if value.startswith(SECRETS_MANAGER):
                continue
            for secret in secret_values(setting, value):
                problem = secret_problem(secret)
                if problem:
                    problems.append(
                        f"ACR_{setting.upper()} {problem}: outside the embedded stack every secret must be "
                        f'at least {MIN_SECRET_BYTES} random bytes (docs/security.md, "Secrets")'
                    )
        return problems

    def service_url(self, service: str) -> str:
        """Base URL (no trailing slash) of another ACR service, by folder name."""
        return str(getattr(self, service.replace("-", "_") + "_url")).rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def settings_errors(held: Collection[str] = SECRET_SETTINGS) -> list[str]:
    """Why this process's ``ACR_*`` environment is not valid, one line per setting (empty when it is),
    a weak secret among ``held`` outside the embedded stack included."""
    try:
        settings = Settings()
    except ValidationError as exc:
        return [_setting_error(error) for error in exc.errors()]
    except SettingsError as exc:  # a JSON setting (ACR_REPLICA_URLS, ACR_TOPIC_ARNS) that is not JSON
        return [str(exc)]
    return settings.weak_secrets(held)


def _setting_error(error: ErrorDetails) -> str:
    loc = "_".join(str(part) for part in error["loc"])
    shown = "(hidden)" if loc in SECRET_SETTINGS else repr(error.get("input"))
    return f"ACR_{loc.upper()}={shown}: {error['msg']}"


if __name__ == "__main__":  # ``python -m acr.settings``: check the settings of this environment
    errors = settings_errors()
    print("\n".join(errors) if errors else "the settings are valid")  # noqa: T201
    raise SystemExit(2 if errors else 0)
