"""Signed, stateless rider tokens: ``base64url(json payload) + "." + base64url(HMAC-SHA256)``.

The payload is ``{"sub": riderId, "name": ..., "exp": unix seconds}``. Nothing is stored: the
signature proves the BFF issued the token, ``exp`` bounds its life.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bff.errors import Unauthorized

RIDER_ID = re.compile(r"rdr_[0-9a-f]{32}")
MAX_NAME = 80
MAX_TOKEN = 2048


@dataclass(frozen=True)
class Rider:
    """Who a valid token speaks for."""

    rider_id: str
    name: str
    expires_at: int = 0  # epoch seconds of the token's ``exp`` (0 for a rider not issued a token yet)


def new_rider_id() -> str:
    """A fresh rider id ``rdr_<uuid hex>``."""
    return f"rdr_{uuid.uuid4().hex}"


def normalize_name(raw: str) -> str:
    """The stripped name; raises ``ValueError`` unless it has 1-80 characters and no control characters."""
    name = raw.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"name must have 1 to {MAX_NAME} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValueError("name must not contain control characters")
    return name


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies rider tokens with one secret."""

    def __init__(self, secret: str, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode()
        self._ttl_s = ttl_s
        self._clock = clock

    def _sign(self, payload: str) -> str:
        return _b64encode(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, rider: Rider) -> str:
        """A token for ``rider`` valid for the configured TTL."""
        claims = {"sub": rider.rider_id, "name": rider.name, "exp": int(self._clock()) + self._ttl_s}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str | None) -> Rider:
        """The rider of a valid token; raises ``Unauthorized`` for a malformed, forged or expired one."""
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise Unauthorized()
        payload, signature = token.split(".")
        try:
            payload.encode("ascii")
            good = hmac.compare_digest(self._sign(payload).encode(), signature.encode("ascii"))
        except UnicodeEncodeError:
            good = False
        if not good:
            raise Unauthorized()
        return self._claims(payload)

    def _claims(self, payload: str) -> Rider:
        try:
            claims = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error) as exc:
            raise Unauthorized() from exc
        if not isinstance(claims, dict):
            raise Unauthorized()
        sub, name, exp = claims.get("sub"), claims.get("name"), claims.get("exp")
        if not (isinstance(sub, str) and RIDER_ID.fullmatch(sub) and isinstance(name, str)):
            raise Unauthorized()
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= self._clock():
            raise Unauthorized("token expired" if isinstance(exp, int) else "missing or invalid token")
        return Rider(sub, name, exp)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
