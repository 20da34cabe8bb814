"""Service identity: only the holder of a service's private key can prove to be it, to one callee, for a
minute; a route admits the callers it names; ops routes need the ops credential."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from typing import Annotated

import jwt
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from acr.guards import OPS, admit
from acr.identity import (
    Caller,
    MissingServiceKey,
    ServiceCredentials,
    Unauthorized,
    key_id,
    new_private_key,
    public_key_of,
    service_token,
)
from acr.service import Service
from acr.settings import Settings
from acr_stack.runner import free_port

KEYS = {"bff": new_private_key(), "ride-manager": new_private_key(), "payment": new_private_key()}
PUBLIC = {service: [public_key_of(key)] for service, key in KEYS.items()}
OPS_TOKEN = "o" * 40
BFF = admit("bff")  # module level: the routes' annotations name it


def caller(service: str, now: float | None = None) -> ServiceCredentials:
    clock = (lambda: now) if now is not None else time.time
    return ServiceCredentials(service, private_key=KEYS[service], now=clock)


def callee(service: str) -> ServiceCredentials:
    return ServiceCredentials(service, public_keys=PUBLIC, ops_token=OPS_TOKEN)


def refused(token: str | None, by: str = "ride-manager") -> str:
    with pytest.raises(Unauthorized) as error:
        callee(by).verify(token)
    return error.value.message


def test_a_callee_knows_the_caller_and_the_rider_it_acts_for() -> None:
    assert callee("ride-manager").verify(caller("bff").token("ride-manager", "rdr_1")) == Caller(
        "bff", "rdr_1"
    )
    assert callee("ride-manager").verify(caller("bff").token("ride-manager")) == Caller("bff", None)
    claims = jwt.decode(caller("bff").token("payment"), options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp"} and claims["exp"] - claims["iat"] == 60


def test_a_token_is_refused_when_missing_forged_expired_or_for_another_service() -> None:
    assert "required" in refused(None)
    assert "required" in refused("")
    assert "not valid" in refused("not-a-jwt")
    assert "not valid" in refused(caller("bff").token("payment"))  # another audience
    assert "not valid" in refused(caller("bff", now=time.time() - 120).token("ride-manager"))  # expired
    long_lived = ServiceCredentials("bff", private_key=KEYS["bff"], ttl_s=3600)  # the right key, too long
    assert "longer" in refused(long_lived.token("ride-manager"))
    other = ServiceCredentials("bff", private_key=new_private_key())  # a key nobody listed
    assert "no key" in refused(other.token("ride-manager"))


def test_a_verification_key_cannot_mint_an_identity() -> None:
    """The callee holds the bff's PUBLIC key only: a token signed with it as an HMAC secret (algorithm
    confusion), an unsigned one, or a rider's HS256 token are all refused."""
    public = PUBLIC["bff"][0]
    claims = {"iss": "bff", "aud": "ride-manager", "sub": "rdr_1", "iat": int(time.time())}
    claims["exp"] = claims["iat"] + 60
    headers = {"kid": key_id(public)}
    assert "not valid" in refused(jwt.encode(claims, public, algorithm="HS256", headers=headers))
    unsigned = jwt.encode(claims, None, algorithm="none", headers=headers)  # type: ignore[arg-type]
    assert "not valid" in refused(unsigned)
    with pytest.raises(MissingServiceKey):
        callee("ride-manager").token("bff")


def test_the_caller_s_key_is_picked_by_its_kid_so_a_rotation_accepts_old_and_new() -> None:
    new = new_private_key()
    rotating = ServiceCredentials("ride-manager", public_keys={"bff": [public_key_of(new), PUBLIC["bff"][0]]})
    for key in (new, KEYS["bff"]):
        token = ServiceCredentials("bff", private_key=key).token("ride-manager")
        assert rotating.verify(token) == Caller("bff", None)


def test_outside_the_embedded_stack_a_service_without_its_key_does_not_start() -> None:
    with pytest.raises(MissingServiceKey, match="ACR_SERVICE_KEY"):
        ServiceCredentials.of("payment", Settings(aws_endpoint_url=""))
    with pytest.raises(MissingServiceKey):
        ServiceCredentials.of("payment", Settings(aws_endpoint_url="http://localstack:4566"))
    assert ServiceCredentials.of("payment", Settings(aws_endpoint_url="http://127.0.0.1:4566"))
    assert ServiceCredentials.of("payment", Settings(aws_endpoint_url="", service_key=KEYS["payment"]))


def test_service_token_mints_from_a_stack_s_environment() -> None:
    token = service_token({"ACR_SERVICE_KEY": KEYS["bff"]}, "bff", "ride-manager", "rdr_9")
    assert callee("ride-manager").verify(token) == Caller("bff", "rdr_9")


def _app() -> TestClient:
    router = APIRouter(prefix="/v1", dependencies=[BFF])
    ops = APIRouter(prefix="/v1/ops", dependencies=[OPS])

    @router.get("/who")
    def who(seen: Annotated[Caller, BFF]) -> dict[str, str | None]:
        return {"service": seen.service, "rider": seen.rider}

    @ops.put("/switch")
    def switch() -> dict[str, bool]:
        return {"switched": True}

    settings = Settings(service_key=KEYS["ride-manager"], service_public_keys=PUBLIC, ops_token=OPS_TOKEN)
    service = Service("ride-manager", lambda runtime: None, routers=[router, ops])
    return TestClient(service.app(settings=settings))


def test_routes_refuse_before_any_work_with_the_standard_error_body() -> None:
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    with _app() as client:
        ok = client.get("/v1/who", headers=bearer(caller("bff").token("ride-manager", "rdr_1")))
        assert ok.json() == {"service": "bff", "rider": "rdr_1"}
        for headers, status, code in (
            ({}, 401, "unauthorized"),
            (bearer(caller("bff").token("payment")), 401, "unauthorized"),
            (bearer(caller("payment").token("ride-manager")), 403, "forbidden"),
            ({"X-Ops-Token": OPS_TOKEN}, 401, "unauthorized"),
        ):
            answer = client.get("/v1/who", headers=headers)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
        for headers in (
            {},
            {"X-Ops-Token": OPS_TOKEN[:-1] + "x"},
            bearer(caller("bff").token("ride-manager")),
        ):
            answer = client.put("/v1/ops/switch", headers=headers)
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthorized")
        for path in ("/v1/ops/stats", "/v1/ops/faults"):  # the kernel's own ops routes too
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"X-Ops-Token": OPS_TOKEN}).status_code == 200
        assert client.put("/v1/ops/switch", headers={"X-Ops-Token": OPS_TOKEN}).json() == {"switched": True}
        assert client.get("/healthz").status_code == 200


def test_a_service_started_in_aws_mode_without_its_key_exits_with_a_clear_message() -> None:
    strong = {"ACR_OPS_TOKEN": secrets.token_urlsafe(32)}  # only the key is missing
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("ACR_")}
        | {"ACR_AWS_ENDPOINT_URL": ""}
        | strong
    )
    started = subprocess.run(
        [sys.executable, "-m", "acr.serve", "reward", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "reward needs its private key in ACR_SERVICE_KEY" in started.stdout + started.stderr
