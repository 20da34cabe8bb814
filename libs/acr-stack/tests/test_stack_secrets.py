"""The local stacks' secrets: random, once per checkout for ``make run`` (mode 0600, reused), fresh for a test
stack, the environment's when it sets them; the banner says where they are, never what they are."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from acr.settings import Settings
from acr_stack import cli
from acr_stack.runner import Stack, StackConfig
from acr_stack.secrets import SECRET_VARIABLES, checkout_secrets, ensure_secrets, read_env_file


@pytest.fixture(autouse=True)
def _no_secrets_from_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_checkout_gets_its_secrets_once_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / ".run" / "secrets.env"
    first = checkout_secrets(path)
    assert set(first) == set(SECRET_VARIABLES) and len(set(first.values())) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert checkout_secrets(path) == first == read_env_file(path)


def test_the_secrets_are_strong_enough_outside_the_embedded_stack(tmp_path: Path) -> None:
    made = checkout_secrets(tmp_path / "secrets.env")
    settings = Settings(
        aws_endpoint_url="", ops_token=made["ACR_OPS_TOKEN"], token_secret=made["ACR_TOKEN_SECRET"]
    )
    assert settings.weak_secrets() == []


def test_an_env_file_keeps_its_other_lines_and_values_and_becomes_private(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# compose\nACR_CITY=full\nACR_OPS_TOKEN=mine-0123456789-0123456789-0123456789\n")
    env_file.chmod(0o644)
    values, added = ensure_secrets(env_file)
    assert added == ["ACR_TOKEN_SECRET"]
    assert values["ACR_OPS_TOKEN"] == "mine-0123456789-0123456789-0123456789"
    assert read_env_file(env_file) == {"ACR_CITY": "full", **values}
    assert env_file.read_text().startswith("# compose\n")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert ensure_secrets(env_file) == (values, [])


def test_acr_stack_secrets_writes_the_compose_env_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    assert cli.main(["secrets", "--env-file", str(env_file)]) == 0
    values = read_env_file(env_file)
    assert set(values) == set(SECRET_VARIABLES)
    said = capsys.readouterr().out
    assert "ACR_OPS_TOKEN new" in said and not any(v in said for v in values.values())


def test_each_test_stack_gets_fresh_secrets_shared_by_all_its_processes() -> None:
    one, two = StackConfig.free(env={"ACR_REPLICAS": "bff=2"}), StackConfig.free()
    tokens = {one.service_env(p.name)["ACR_OPS_TOKEN"] for p in one.processes}
    assert tokens == {one.ops_token} and one.ops_token != two.ops_token
    secrets = {one.service_env(p.name)["ACR_TOKEN_SECRET"] for p in one.processes}
    assert len(secrets) == 1 and secrets != {two.service_env()["ACR_TOKEN_SECRET"]}


def test_secrets_set_in_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACR_OPS_TOKEN", "from-the-environment-0123456789-abcdef")
    monkeypatch.setenv("ACR_TOKEN_SECRET", "")  # empty: not set
    config = StackConfig.free()
    assert config.ops_token == "from-the-environment-0123456789-abcdef"
    assert config.service_env()["ACR_TOKEN_SECRET"] == config.secrets["ACR_TOKEN_SECRET"]
    pinned = StackConfig.free(env={"ACR_OPS_TOKEN": "pinned-by-the-test-0123456789-abcdef"})
    assert pinned.ops_token == "pinned-by-the-test-0123456789-abcdef"


def test_the_banner_says_where_the_secrets_are_never_what(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = StackConfig.free(secrets=checkout_secrets())
    cli._banner(Stack(config), 1.0)
    banner = capsys.readouterr().out
    assert str(tmp_path / ".run" / "secrets.env") in banner
    assert not any(value in banner for value in config.secrets.values()) and "dev-ops-token" not in banner
    monkeypatch.setenv("ACR_OPS_TOKEN", "from-the-environment-0123456789-abcdef")
    cli._banner(Stack(config), 1.0)
    banner = capsys.readouterr().out
    assert "ACR_OPS_TOKEN from the environment" in banner and "from-the-environment-0123" not in banner
