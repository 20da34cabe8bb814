"""Attacks on the secrets and the rider tokens (docs/security.md, "Attack table"): each is refused and
changes nothing. The stack runs with fresh random secrets (``StackConfig.free``), as ``make run`` does with
its checkout's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from rider_client import Ops, Rider, book_ride, random_places
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from acr.secrets import DEV_OPS_TOKEN, DEV_TOKEN_SECRET, OLD_TOKEN_SECRET
from acr.settings import SERVICE_PORTS
from acr.topology.services import secret_settings
from acr_stack import Stack
from acr_stack.runner import free_port

pytestmark = pytest.mark.system

KNOWN_SECRETS = (OLD_TOKEN_SECRET, DEV_TOKEN_SECRET)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def old_format_token(secret: str, rider_id: str) -> str:
    """A token as the BFF made them before #14: ``base64url(claims).base64url(HMAC-SHA256)``."""
    payload = _b64(json.dumps({"sub": rider_id, "name": "Mallory", "exp": int(time.time()) + 3600}).encode())
    return f"{payload}.{_b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())}"


def forged_jwts(secret: str, rider_id: str, kids: list[str]) -> list[str]:
    """Standard tokens with every claim right, signed with ``secret``, under each key id in ``kids``."""
    now = int(time.time())
    claims = {"iss": "acr-bff", "aud": "acr-rider-api", "sub": rider_id, "iat": now, "exp": now + 3600}
    return [jwt.encode(claims | {"name": "Mallory"}, secret, headers={"kid": kid}) for kid in kids]


@pytest.fixture
def paused(attack_stack: Stack) -> Iterator[Ops]:
    """The stack's ops API with dispatch paused: a booked ride stays REQUESTED, so "nothing changed" is
    exact (the one-minute dispatch timeout is far away)."""
    ops = Ops.of(attack_stack)
    assert ops.call("PUT", "/dispatch", {"paused": True}).status_code == 200
    try:
        yield ops
    finally:
        assert ops.call("PUT", "/dispatch", {"paused": False}).status_code == 200


def _refused_on_the_socket(base: str, token: str) -> bool:
    """The push websocket closes 4401 for ``token``."""
    with connect(f"{base.replace('http', 'ws', 1)}/ws?token={token}", open_timeout=10) as ws:
        try:
            ws.recv(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd is not None and closed.rcvd.code == 4401
    return False


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the old secret is short
def test_a_token_forged_with_the_old_default_secret_is_refused_and_changes_nothing(
    attack_stack: Stack, paused: Ops
) -> None:
    base = attack_stack.config.url("bff")
    victim, mallory = Rider.sign_up(base, "Victim"), Rider.sign_up(base, "Mallory")
    ride = book_ride(victim, random.Random(1401))
    before = victim.ride(ride["rideId"])
    our_kid = jwt.get_unverified_header(mallory.token)["kid"]  # from a token of the attacker's own
    forged = [old_format_token(s, victim.rider_id) for s in KNOWN_SECRETS] + [
        token
        for secret in KNOWN_SECRETS
        for token in forged_jwts(
            secret, victim.rider_id, [our_kid, hashlib.sha256(secret.encode()).hexdigest()]
        )
    ]
    for token in forged:
        as_victim = Rider(base, victim.rider_id, token)
        for response in (
            as_victim.get(f"/api/v1/rides/{ride['rideId']}"),
            as_victim.get("/api/v1/rides"),
            as_victim.get("/api/v1/riders/me"),
            as_victim.post(f"/api/v1/rides/{ride['rideId']}/cancel"),
        ):
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"
        assert _refused_on_the_socket(base, token)
    assert victim.ride(ride["rideId"]) == before


def test_the_old_default_ops_token_is_refused_and_changes_nothing(attack_stack: Stack) -> None:
    base, ops = attack_stack.config.url("bff"), Ops.of(attack_stack)
    fleet = ops.get("/fleet")["cars"]
    guessed = Ops(base, DEV_OPS_TOKEN)
    for method, path, body in (
        ("PUT", "/dispatch", {"paused": True}),
        ("PUT", "/gateway", {"mode": "decline"}),
        ("POST", f"/cars/{fleet[0]['carId']}/stall", None),
        ("GET", "/rides", None),
    ):
        refused = guessed.call(method, path, body)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert [c["carId"] for c in ops.get("/fleet")["cars"] if c["state"] == "OUT_OF_SERVICE"] == [
        c["carId"] for c in fleet if c["state"] == "OUT_OF_SERVICE"
    ]


def test_a_token_of_another_rider_finds_nothing_of_theirs_and_changes_nothing(
    attack_stack: Stack, paused: Ops
) -> None:
    base = attack_stack.config.url("bff")
    owner, other = Rider.sign_up(base, "Owner"), Rider.sign_up(base, "Other")
    rng = random.Random(1402)
    ride = book_ride(owner, rng)
    before = owner.ride(ride["rideId"])
    quote = owner.quote(*random_places(owner, 2, rng))
    assert quote.status_code == 201, quote.text

    read = other.get(f"/api/v1/rides/{ride['rideId']}")
    cancel = other.post(f"/api/v1/rides/{ride['rideId']}/cancel")
    book = other.post("/api/v1/rides", {"quoteId": quote.json()["quoteId"]}, {"Idempotency-Key": "steal-1"})
    assert (read.status_code, read.json()["error"]["code"]) == (404, "ride_not_found")
    assert (cancel.status_code, cancel.json()["error"]["code"]) == (404, "ride_not_found")
    assert (book.status_code, book.json()["error"]["code"]) == (404, "quote_not_found")
    assert other.get("/api/v1/rides").json()["rides"] == []

    assert owner.ride(ride["rideId"]) == before
    assert [r["rideId"] for r in owner.get("/api/v1/rides").json()["rides"]] == [ride["rideId"]]


@pytest.mark.parametrize("service", [s for s in SERVICE_PORTS if secret_settings(s)])
@pytest.mark.parametrize(
    ("secret", "why"),
    [(None, "is a known default value"), ("s" * 31, "is shorter than 32 bytes")],
    ids=["default", "short"],
)
def test_starting_a_service_in_aws_mode_with_a_default_or_short_secret_refuses(
    service: str, secret: str | None, why: str
) -> None:
    """No stack: the service itself, on AWS (an empty endpoint). Any attempt to reach AWS would go through
    the proxy set here, which counts the connections it gets: none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACR_", "AWS_"))}
    strong = {name: f"{name}-{os.urandom(24).hex()}" for name in ("ACR_OPS_TOKEN", "ACR_TOKEN_SECRET")}
    env |= strong | {
        "ACR_AWS_ENDPOINT_URL": "",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    if secret is None:
        del env["ACR_OPS_TOKEN"]
    else:
        env["ACR_OPS_TOKEN"] = secret
    port = free_port()
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        proxy.setblocking(False)
        env["HTTPS_PROXY"] = env["HTTP_PROXY"] = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        started = subprocess.run(
            [sys.executable, "-m", "acr.serve", service, "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        with pytest.raises(BlockingIOError):
            proxy.accept()  # nobody tried to reach AWS
    assert started.returncode == 2, started.stdout + started.stderr
    assert started.stderr.startswith(f"{service} refuses to start:")
    assert f"ACR_OPS_TOKEN {why}" in started.stderr
    assert (secret or DEV_OPS_TOKEN) not in started.stderr + started.stdout
    assert not any(value in started.stderr for value in strong.values())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
