from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from bff_fakes import SETTINGS, auth
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bff.auth import (
    AUDIENCE,
    ISSUER,
    RIDER_ID,
    OidcIssuer,
    Rider,
    TokenSigner,
    bearer_token,
    external_rider_id,
    key_id,
    new_rider_id,
    normalize_name,
)
from bff.bootstrap import SERVICE, assemble, rider_tokens
from bff.errors import ServiceUnavailable, Unauthorized
from bff.state import Dependencies

SECRET = "unit-test-secret-0123456789-abcdef"
NEXT_SECRET = "unit-test-secret-after-the-rotation"
NOW = 1_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(secret: str = SECRET, ttl_s: int = 60, **kwargs: Any) -> TokenSigner:
    return TokenSigner(secret, ttl_s, clock=kwargs.pop("clock", Clock()), **kwargs)


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": new_rider_id(), "iat": NOW, "exp": NOW + 60, "name": "Eve"}
    return {k: v for k, v in (base | changes).items() if v is not None}


def signed(payload: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm, headers={"kid": key_id(secret)})


def test_a_token_is_a_standard_jwt_with_every_claim_and_a_key_id() -> None:
    rider_id = new_rider_id()
    token = signer().issue(rider_id, "Ada Lovelace")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": key_id(SECRET)}
    decoded = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience=AUDIENCE, options={"verify_exp": False}
    )
    assert decoded == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": rider_id,
        "iat": NOW,
        "exp": NOW + 60,
        "name": "Ada Lovelace",
    }
    assert RIDER_ID.fullmatch(rider_id)
    assert signer().verify(token) == Rider(rider_id, "Ada Lovelace", NOW + 60)


def test_expired_token_is_refused() -> None:
    clock = Clock()
    tokens = signer(clock=clock)
    token = tokens.issue(new_rider_id(), "Ada")
    clock.now += 59
    tokens.verify(token)
    clock.now += 1
    with pytest.raises(Unauthorized) as error:
        tokens.verify(token)
    assert error.value.headers == {"WWW-Authenticate": "Bearer"}


def test_a_token_issued_in_the_future_is_refused() -> None:
    with pytest.raises(Unauthorized):
        signer().verify(signed(claims(iat=NOW + 3600, exp=NOW + 7200)))


def test_token_of_another_secret_is_forged() -> None:
    with pytest.raises(Unauthorized):
        signer().verify(signer("another-secret-0123456789-abcdefgh").issue(new_rider_id(), "Eve"))


def test_a_token_signed_with_another_secret_under_our_key_id_is_forged() -> None:
    forged = jwt.encode(claims(), "another-secret-0123456789-abcdefgh", headers={"kid": key_id(SECRET)})
    with pytest.raises(Unauthorized):
        signer().verify(forged)


def test_tampered_payload_is_forged() -> None:
    header, _payload, signature = signer().issue(new_rider_id(), "Eve").split(".")
    other = signed(claims()).split(".")[1]
    with pytest.raises(Unauthorized):
        signer().verify(f"{header}.{other}.{signature}")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # forging with a short key
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_the_algorithm_is_pinned(algorithm: str) -> None:
    with pytest.raises(Unauthorized):
        signer().verify(signed(claims(), algorithm=algorithm))


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": key_id(SECRET)})
    with pytest.raises(Unauthorized):
        signer().verify(unsigned)


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "iat", "exp", "name"])
def test_every_claim_is_required(claim: str) -> None:
    with pytest.raises(Unauthorized):
        signer().verify(signed(claims(**{claim: None})))


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"sub": "bob"},
        {"exp": True},
        {"exp": "2000000000"},
        {"iat": 1.5},
        {"name": 7},
    ],
)
def test_signed_but_invalid_claims_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        signer().verify(signed(claims(**changes)))


@pytest.mark.parametrize("token", [None, "", "abc", "a.b", "a.b.c", ".", "é.é.é", "x" * 5000])
def test_malformed_tokens(token: str | None) -> None:
    with pytest.raises(Unauthorized):
        signer().verify(token)


@given(st.text(max_size=300))
def test_verify_never_fails_otherwise(token: str) -> None:
    with pytest.raises(Unauthorized):
        signer().verify(token)


def test_rotating_the_secret_logs_nobody_out() -> None:
    rider_id = new_rider_id()
    before = signer(SECRET).issue(rider_id, "Ada")
    rotated = signer(NEXT_SECRET, previous=[SECRET])
    assert rotated.verify(before).rider_id == rider_id
    after = rotated.issue(rider_id, "Ada")
    assert jwt.get_unverified_header(after)["kid"] == key_id(NEXT_SECRET) != key_id(SECRET)
    assert rotated.verify(after).rider_id == rider_id
    with pytest.raises(Unauthorized):  # once the old secret is dropped, its tokens are refused
        signer(NEXT_SECRET).verify(before)


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


# An external OpenID Connect issuer: its discovery document and JWKS served by a local HTTP server.

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_ID = "4l1cecl1ent1d"


class IdentityProvider:
    """A tiny OIDC issuer: ``/.well-known/openid-configuration`` and ``/jwks.json``, counting JWKS fetches."""

    def __init__(self) -> None:
        self.jwks_fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                documents = {
                    "/.well-known/openid-configuration": {
                        "issuer": provider.issuer,
                        "jwks_uri": provider.issuer + "/jwks.json",
                    },
                    "/jwks.json": provider.jwks(),
                }
                if self.path == "/jwks.json":
                    provider.jwks_fetches += 1
                body = json.dumps(documents.get(self.path, {})).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True) | {"kid": "rsa-1", "alg": "RS256"}
        ec_jwk = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True) | {"kid": "ec-1", "alg": "ES256"}
        return {"keys": [rsa_jwk, ec_jwk]}

    def id_token(
        self, sub: str = "cognito-user-1", key: Any = RSA_KEY, kid: str = "rsa-1", **changes: Any
    ) -> str:
        payload = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": sub,
            "iat": NOW,
            "exp": NOW + 3600,
            "email": "ada@example.com",
            "token_use": "id",
        } | changes
        algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm, {"kid": kid})


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider()
    thread = threading.Thread(target=idp.server.serve_forever, daemon=True)
    thread.start()
    yield idp
    idp.server.shutdown()
    idp.server.server_close()


def with_oidc(provider: IdentityProvider, jwks_url: str = "") -> TokenSigner:
    return signer(ttl_s=3600, oidc=OidcIssuer(provider.issuer, CLIENT_ID, jwks_url))


def test_an_external_issuers_id_token_is_accepted_with_a_stable_rider_id(provider: IdentityProvider) -> None:
    tokens = with_oidc(provider)  # the JWKS found by discovery
    rider = tokens.verify(provider.id_token())
    assert rider == Rider(external_rider_id(provider.issuer, "cognito-user-1"), "ada@example.com", NOW + 3600)
    assert RIDER_ID.fullmatch(rider.rider_id)
    assert tokens.verify(provider.id_token(email=None, name="Ada")).rider_id == rider.rider_id
    assert tokens.verify(provider.id_token(sub="cognito-user-2")).rider_id != rider.rider_id
    assert tokens.verify(provider.id_token(key=EC_KEY, kid="ec-1")).rider_id == rider.rider_id


def test_the_jwks_is_fetched_once_and_cached(provider: IdentityProvider) -> None:
    tokens = with_oidc(provider, jwks_url=provider.issuer + "/jwks.json")
    fetched = provider.jwks_fetches
    for _ in range(5):
        tokens.verify(provider.id_token())
    assert provider.jwks_fetches == fetched + 1


def test_our_own_tokens_are_still_accepted_beside_the_external_issuers(provider: IdentityProvider) -> None:
    tokens = with_oidc(provider)
    rider_id = new_rider_id()
    assert tokens.verify(tokens.issue(rider_id, "Ada")).rider_id == rider_id


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-client"},
        {"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_other"},
        {"exp": NOW - 1},
        {"sub": None},
        {"iat": None},
        {"sub": ""},
    ],
)
def test_an_external_token_with_bad_claims_is_refused(
    provider: IdentityProvider, changes: dict[str, Any]
) -> None:
    with pytest.raises(Unauthorized):
        with_oidc(provider).verify(provider.id_token(**changes))


def test_an_external_token_signed_by_another_key_or_kid_is_refused(provider: IdentityProvider) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (
        provider.id_token(key=impostor),
        provider.id_token(kid="unknown-kid"),
        jwt.encode(claims(iss=provider.issuer, aud=CLIENT_ID), SECRET, headers={"kid": "rsa-1"}),
    ):
        with pytest.raises(Unauthorized):
            with_oidc(provider).verify(token)


def test_without_an_external_issuer_its_tokens_are_refused(provider: IdentityProvider) -> None:
    with pytest.raises(Unauthorized):
        signer().verify(provider.id_token())


def test_an_unreachable_issuer_is_unavailable_not_unauthorized() -> None:
    tokens = signer(oidc=OidcIssuer("http://127.0.0.1:9", CLIENT_ID))
    with pytest.raises(ServiceUnavailable):
        tokens.verify(jwt.encode(claims(), "x" * 32, headers={"kid": "rsa-1"}))


# Through the app: the settings wire the keys, and REST and the websocket accept the same tokens.


def test_the_app_accepts_an_external_id_token_on_rest_and_the_websocket(
    provider: IdentityProvider, deps: Dependencies
) -> None:
    settings = SETTINGS.model_copy(update={"oidc_issuer": provider.issuer, "oidc_audience": CLIENT_ID})
    now = int(time.time())
    token = provider.id_token(iat=now, exp=now + 600, name="Ada Cognito")
    app = SERVICE.app(settings=settings, wire=lambda runtime: assemble(runtime, deps))
    with TestClient(app) as client:
        me = client.get("/api/v1/riders/me", headers=auth(token))
        assert me.status_code == 200, me.text
        assert (me.json()["riderId"], me.json()["name"]) == (
            external_rider_id(provider.issuer, "cognito-user-1"),
            "Ada Cognito",
        )
        with client.websocket_connect(f"/ws?token={token}") as ws:
            ws.send_json({"type": "resume", "rideId": "ride_unknown", "afterVersion": 0})
            assert ws.receive_json()["code"] == "ride_not_found"
        refused = client.get("/api/v1/riders/me", headers=auth(provider.id_token(iat=now, exp=now - 1)))
        assert refused.status_code == 401


def test_the_settings_name_the_previous_secrets() -> None:
    settings = SETTINGS.model_copy(
        update={
            "token_secret": NEXT_SECRET,
            "token_previous_secrets": f" {SECRET} ,other-secret-0123456789-0123",
        }
    )
    rider_id = new_rider_id()
    old = TokenSigner(SECRET, 60).issue(rider_id, "Ada")
    assert rider_tokens(settings).verify(old).rider_id == rider_id
    with pytest.raises(Unauthorized):
        rider_tokens(SETTINGS.model_copy(update={"token_secret": NEXT_SECRET})).verify(old)
