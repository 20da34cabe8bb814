from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bff.auth import RIDER_ID, Rider, TokenSigner, bearer_token, new_rider_id, normalize_name
from bff.errors import Unauthorized

SECRET = "unit-test-secret-0123456789"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_round_trip() -> None:
    clock = Clock()
    signer = TokenSigner(SECRET, 60, clock=clock)
    rider = Rider(new_rider_id(), "Ada Lovelace")
    assert RIDER_ID.fullmatch(rider.rider_id)
    assert signer.verify(signer.issue(rider)) == Rider(rider.rider_id, rider.name, int(clock.now) + 60)


def test_expired_token_is_refused() -> None:
    clock = Clock()
    signer = TokenSigner(SECRET, 60, clock=clock)
    token = signer.issue(Rider(new_rider_id(), "Ada"))
    clock.now += 59
    signer.verify(token)
    clock.now += 1
    with pytest.raises(Unauthorized) as error:
        signer.verify(token)
    assert error.value.headers == {"WWW-Authenticate": "Bearer"}


def test_token_of_another_secret_is_forged() -> None:
    token = TokenSigner("another-secret-0123456789", 60).issue(Rider(new_rider_id(), "Eve"))
    with pytest.raises(Unauthorized):
        TokenSigner(SECRET, 60).verify(token)


def test_tampered_payload_is_forged() -> None:
    signer = TokenSigner(SECRET, 60)
    payload, signature = signer.issue(Rider(new_rider_id(), "Eve")).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = new_rider_id()
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthorized):
        signer.verify(f"{forged}.{signature}")


@pytest.mark.parametrize("token", [None, "", "abc", "a.b.c", ".", "é.é", "x" * 5000])
def test_malformed_tokens(token: str | None) -> None:
    with pytest.raises(Unauthorized):
        TokenSigner(SECRET, 60).verify(token)


def test_signed_but_invalid_claims_are_refused() -> None:
    signer = TokenSigner(SECRET, 60)
    for claims in (
        [],
        {"sub": "bob", "name": "B", "exp": 2**40},
        {"sub": new_rider_id(), "name": "B", "exp": True},
    ):
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        with pytest.raises(Unauthorized):
            signer.verify(f"{payload}.{signer._sign(payload)}")


@given(st.text(max_size=300))
def test_verify_never_fails_otherwise(token: str) -> None:
    with pytest.raises(Unauthorized):
        TokenSigner(SECRET, 60).verify(token)


def test_names() -> None:
    assert normalize_name("  Ada ") == "Ada"
    assert normalize_name("x" * 80) == "x" * 80
    for bad in ("", "   ", "x" * 81, "Ada\x00", "A\nB"):
        with pytest.raises(ValueError):
            normalize_name(bad)


def test_bearer_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
