"""Secrets outside the embedded stack: known or short ones refused, Secrets Manager references read at start
(against the emulator, which implements Secrets Manager)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from acr import aws, serve
from acr.identity import new_private_key
from acr.secrets import DEV_OPS_TOKEN, DEV_TOKEN_SECRET, WeakSecret, is_loopback_endpoint
from acr.service import Runtime, Service
from acr.settings import SERVICE_PORTS, Settings, settings_errors
from acr.topology.services import SECRETS, secret_settings
from acr_testkit.emulator import moto_server

STRONG = secrets.token_urlsafe(32)
OTHER_STRONG = secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("endpoint", "embedded"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://localhost:4566", True),
        ("http://127.0.0.2:20001", True),
        ("http://[::1]:4566", True),
        ("", False),
        ("http://localstack:4566", False),
        ("https://sqs.us-east-1.amazonaws.com", False),
        ("http://10.0.0.5:4566", False),
    ],
)
def test_only_a_loopback_emulator_is_the_embedded_stack(endpoint: str, embedded: bool) -> None:
    assert is_loopback_endpoint(endpoint) is embedded
    assert Settings(aws_endpoint_url=endpoint).embedded is embedded


def test_the_embedded_stack_may_run_on_the_development_defaults() -> None:
    assert Settings().weak_secrets() == []


def test_outside_the_embedded_stack_known_and_short_secrets_are_refused() -> None:
    problems = Settings(aws_endpoint_url="http://localstack:4566").weak_secrets()
    assert [p.split(" is ")[0] for p in problems] == ["ACR_OPS_TOKEN", "ACR_TOKEN_SECRET"]
    assert all("known default" in p for p in problems)
    short = Settings(aws_endpoint_url="", ops_token="x" * 31, token_secret=STRONG).weak_secrets()
    assert len(short) == 1 and short[0].startswith("ACR_OPS_TOKEN is shorter than 32 bytes")


def test_every_previous_token_secret_is_checked_too() -> None:
    settings = Settings(
        aws_endpoint_url="",
        ops_token=STRONG,
        token_secret=OTHER_STRONG,
        token_previous_secrets=f"{STRONG}, {DEV_TOKEN_SECRET}",
    )
    assert [p.split(" is ")[0] for p in settings.weak_secrets()] == ["ACR_TOKEN_PREVIOUS_SECRETS"]


def test_random_secrets_and_secrets_manager_references_pass() -> None:
    settings = Settings(aws_endpoint_url="", ops_token=STRONG, token_secret="secretsmanager:acr/token")
    assert settings.weak_secrets() == []


def test_a_bad_secret_is_reported_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACR_OPS_TOKEN", "hunter2")  # below the 8 characters every mode needs
    (error,) = settings_errors()
    assert error.startswith("ACR_OPS_TOKEN=(hidden)") and "hunter2" not in error


def test_a_service_refuses_to_start_outside_the_embedded_stack_with_a_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACR_AWS_ENDPOINT_URL", "")
    monkeypatch.delenv("ACR_OPS_TOKEN", raising=False)
    monkeypatch.setenv("ACR_TOKEN_SECRET", STRONG)
    assert serve.main(["bff", "--port", "1"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("bff refuses to start:") and "ACR_OPS_TOKEN is a known default" in message
    assert DEV_OPS_TOKEN not in message and STRONG not in message


def test_a_service_checks_the_secrets_it_holds() -> None:
    assert secret_settings("bff") == ("ops_token", "token_secret", "token_previous_secrets")
    settings = Settings(aws_endpoint_url="", token_secret=STRONG)  # the default ops token
    for service in SERVICE_PORTS:  # one given no ops token in AWS does not hold the default either
        refused = settings.weak_secrets(secret_settings(service)) != []
        assert refused is ("ops-token" in SECRETS.get(service, ())), service


@pytest.fixture(scope="module")
def secrets_manager() -> Iterator[Any]:
    with moto_server() as url:
        yield aws.client("secretsmanager", Settings(aws_endpoint_url=url))


def test_secrets_manager_references_are_read_at_start(secrets_manager: Any) -> None:
    secrets_manager.create_secret(Name="acr/ops-token", SecretString=STRONG)
    arn = secrets_manager.create_secret(Name="acr/token-secret", SecretString=OTHER_STRONG)["ARN"]
    settings = Settings(
        aws_endpoint_url="", ops_token="secretsmanager:acr/ops-token", token_secret=f"secretsmanager:{arn}"
    )
    resolved = aws.resolve_secrets(settings, make_client=lambda _name: secrets_manager)
    assert (resolved.ops_token, resolved.token_secret) == (STRONG, OTHER_STRONG)


def test_a_weak_secret_from_secrets_manager_is_refused(secrets_manager: Any) -> None:
    secrets_manager.create_secret(Name="acr/weak", SecretString=DEV_OPS_TOKEN)
    settings = Settings(aws_endpoint_url="", ops_token="secretsmanager:acr/weak", token_secret=STRONG)
    with pytest.raises(WeakSecret, match="ACR_OPS_TOKEN is a known default"):
        aws.resolve_secrets(settings, make_client=lambda _name: secrets_manager)


def test_settings_without_references_ask_nothing_of_aws() -> None:
    def no_client(name: str) -> Any:
        raise AssertionError(f"asked for a {name} client")

    settings = Settings(aws_endpoint_url="", ops_token=STRONG, token_secret=OTHER_STRONG)
    assert aws.resolve_secrets(settings, make_client=no_client) == settings


def test_an_app_started_from_the_environment_refuses_a_weak_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACR_AWS_ENDPOINT_URL", "http://localstack:4566")
    monkeypatch.setenv("ACR_TOKEN_SECRET", STRONG)
    monkeypatch.setenv("ACR_SERVICE_KEY", new_private_key())
    wired: list[Settings] = []

    def wire(runtime: Runtime) -> None:
        wired.append(runtime.settings)

    app = Service[None]("bff", wire=wire).app()
    with pytest.raises(WeakSecret, match="ACR_OPS_TOKEN is a known default"), TestClient(app):
        pass
    assert wired == []  # nothing was wired, so nothing was touched
    monkeypatch.setenv("ACR_OPS_TOKEN", OTHER_STRONG)
    with TestClient(app):
        assert [w.ops_token for w in wired] == [OTHER_STRONG]
