"""Service keys in the stacks: each process holds its own private key only, and every public key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from acr.identity import ServiceCredentials, public_key_of
from acr_stack.keys import ServiceKeys, write_env_file
from acr_stack.runner import StackConfig


def test_each_process_gets_its_own_private_key_and_every_public_key() -> None:
    config = StackConfig.free()
    bff, payment, shared = config.service_env("bff"), config.service_env("payment"), config.service_env()
    assert bff["ACR_SERVICE_KEY"] != payment["ACR_SERVICE_KEY"] and "ACR_SERVICE_KEY" not in shared
    public = json.loads(shared["ACR_SERVICE_PUBLIC_KEYS"])
    assert set(public) == set(config.ports) and public["bff"] == public_key_of(bff["ACR_SERVICE_KEY"])
    assert config.service_env("bff") == bff  # one pair per service for the stack's whole life
    assert StackConfig.free().service_env("bff")["ACR_SERVICE_KEY"] != bff["ACR_SERVICE_KEY"]  # per stack
    token = ServiceCredentials("bff", private_key=bff["ACR_SERVICE_KEY"]).token("payment")
    verifier = ServiceCredentials("payment", public_keys={k: [v] for k, v in public.items()})
    assert verifier.verify(token).service == "bff"


def test_the_compose_env_file_gets_fresh_keys_readable_by_its_owner_only(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACR_CITY=small\nACR_BFF_SERVICE_KEY='old'\n")
    write_env_file(env_file, ServiceKeys.generate())
    lines = env_file.read_text().splitlines()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert lines[0] == "ACR_CITY=small" and "ACR_BFF_SERVICE_KEY='old'" not in lines
    names = [line.partition("=")[0] for line in lines[1:]]
    assert names == [
        *(f"ACR_{s.upper().replace('-', '_')}_SERVICE_KEY" for s in ServiceKeys.generate().private),
        "ACR_SERVICE_PUBLIC_KEYS",
    ]
