"""Rider tokens: standard JWTs made and checked with PyJWT.

The BFF issues HS256 tokens with ``iss``, ``aud``, ``sub`` (the rider id), ``iat``, ``exp`` and ``name``,
and a ``kid`` header naming the secret that signed them. Verification pins the algorithm, requires every
claim, and picks the key by ``kid``: the current secret and every previous one (``ACR_TOKEN_SECRET``,
``ACR_TOKEN_PREVIOUS_SECRETS``), so rotating the secret logs nobody out. When an external OpenID Connect
issuer is configured (``ACR_OIDC_ISSUER``), its RS256/ES256 ID tokens are accepted too, checked against its
published keys (JWKS, cached), and their ``sub`` is mapped to a stable rider id of our own format.
Nothing is stored: the signature proves who issued the token, ``exp`` bounds its life.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from bff.errors import ServiceUnavailable, Unauthorized

RIDER_ID = re.compile(r"rdr_[0-9a-f]{32}")
MAX_NAME = 80
MAX_TOKEN = 4096  # an OIDC ID token carries more claims than ours
ISSUER = "acr-bff"
AUDIENCE = "acr-rider-api"
ALGORITHM = "HS256"
OIDC_ALGORITHMS = ["RS256", "ES256"]
REQUIRED = ["iss", "aud", "sub", "iat", "exp"]
CLOCK_SKEW_S = 60  # an ``iat`` this far ahead of our clock is still accepted (another host's clock)
JWKS_TIMEOUT_S = 5.0
JWKS_CACHE_S = 300.0


@dataclass(frozen=True)
class Rider:
    """Who a valid token speaks for, until when (the token's ``exp``, epoch seconds)."""

    rider_id: str
    name: str
    expires_at: int


def new_rider_id() -> str:
    """A fresh rider id ``rdr_<uuid hex>``."""
    return f"rdr_{uuid.uuid4().hex}"


def external_rider_id(issuer: str, subject: str) -> str:
    """The rider id of an external identity: stable for the same issuer and ``sub``, never one of ours."""
    return "rdr_" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:32]


def normalize_name(raw: str) -> str:
    """The stripped name; raises ``ValueError`` unless it has 1-80 characters and no control characters."""
    name = raw.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"name must have 1 to {MAX_NAME} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValueError("name must not contain control characters")
    return name


def key_id(secret: str) -> str:
    """The ``kid`` of a signing secret: a digest prefix, so a rotation needs no key-id setting."""
    return hashlib.sha256(b"acr-rider-token-kid\n" + secret.encode()).hexdigest()[:16]


def _fresh(claims: dict[str, Any], now: float) -> int:
    """The token's ``exp``; raises ``Unauthorized`` unless it is issued (``iat``) and not expired."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if type(exp) is not int or type(iat) is not int or iat > now + CLOCK_SKEW_S:  # a bool is no int here
        raise Unauthorized()
    if exp <= now:
        raise Unauthorized("token expired")
    return exp


def _decode(token: str, key: Any, algorithms: list[str], issuer: str, audience: str) -> dict[str, Any]:
    """The claims of a token signed by ``key``, from ``issuer`` for ``audience``, with every claim present.
    Time is checked by ``_fresh`` against the signer's clock (a fake one in tests)."""
    options: Any = {"require": REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False}
    try:
        return jwt.decode(token, key, algorithms, options, audience=audience, issuer=issuer)
    except jwt.PyJWTError as exc:
        raise Unauthorized() from exc


class OidcIssuer:
    """An external OpenID Connect issuer (e.g. a Cognito user pool): its ID tokens, checked with the keys of
    its JWKS (``jwks_url``, else found by OIDC discovery on first use), fetched and cached by PyJWKClient."""

    def __init__(self, issuer: str, audience: str, jwks_url: str = "") -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self._keys: jwt.PyJWKClient | None = None

    def _client(self) -> jwt.PyJWKClient:
        if self._keys is None:
            url = self._jwks_url or self._discover()
            self._keys = jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S)
        return self._keys

    def _discover(self) -> str:
        """The ``jwks_uri`` of the issuer's discovery document (which must name the same issuer)."""
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_S) as response:  # noqa: S310 (an https setting)
                document = json.load(response)
        except (OSError, ValueError) as exc:
            raise ServiceUnavailable("oidc-issuer") from exc
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise ServiceUnavailable("oidc-issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ServiceUnavailable("oidc-issuer")
        return jwks_uri

    def verify(self, token: str, now: float) -> Rider:
        """The rider of a valid ID token of this issuer; ``Unauthorized`` otherwise."""
        try:
            key = self._client().get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise ServiceUnavailable("oidc-issuer") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized() from exc
        claims = _decode(token, key, OIDC_ALGORITHMS, self.issuer, self.audience)
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthorized()
        return Rider(external_rider_id(self.issuer, subject), _display_name(claims), _fresh(claims, now))


def _display_name(claims: dict[str, Any]) -> str:
    """What an ID token says the rider is called (Cognito: ``name``, else ``email`` or its user name)."""
    for claim in ("name", "email", "preferred_username", "cognito:username"):
        value = claims.get(claim)
        if isinstance(value, str):
            try:
                return normalize_name(value[:MAX_NAME])
            except ValueError:
                continue
    return "Rider"


class TokenSigner:
    """Issues rider tokens with the current secret; verifies them with it, the previous secrets, or an
    external issuer's keys."""

    def __init__(
        self,
        secret: str,
        ttl_s: int,
        *,
        previous: Sequence[str] = (),
        oidc: OidcIssuer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kid = key_id(secret)
        self._secret = secret
        self._keys = {key_id(s): s for s in (*previous, secret)}
        self._ttl_s = ttl_s
        self._oidc = oidc
        self._clock = clock

    def issue(self, rider_id: str, name: str) -> str:
        """A token for the rider valid for the configured TTL."""
        now = int(self._clock())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": rider_id, "iat": now, "exp": now + self._ttl_s}
        claims["name"] = name
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"kid": self._kid})

    def verify(self, token: str | None) -> Rider:
        """The rider of a valid token; raises ``Unauthorized`` for a malformed, forged or expired one."""
        if not token or len(token) > MAX_TOKEN:
            raise Unauthorized()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthorized() from exc
        secret = self._keys.get(kid) if isinstance(kid, str) else None
        if secret is None:
            if self._oidc is None:
                raise Unauthorized()
            return self._oidc.verify(token, self._clock())
        claims = _decode(token, secret, [ALGORITHM], ISSUER, AUDIENCE)
        sub, name = claims["sub"], claims.get("name")
        if not (isinstance(sub, str) and RIDER_ID.fullmatch(sub) and isinstance(name, str)):
            raise Unauthorized()
        return Rider(sub, name, _fresh(claims, self._clock()))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
