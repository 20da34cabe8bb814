"""Service identity: who is calling, proved by a signature only the caller can make.

Each service has its own Ed25519 key pair. A caller mints a short-lived JWT (EdDSA; ``iss`` the caller,
``aud`` the callee, ``sub`` the caller or the rider it acts for, ``iat``, ``exp``, ``kid`` the key's id)
and sends it as ``Authorization: Bearer``. A callee holds only PUBLIC keys, so it can check a caller but
never pass for one. Keys are base64url text (the 32 raw bytes): ``ACR_SERVICE_KEY`` is this service's
private key, ``ACR_SERVICE_PUBLIC_KEYS`` every service's public keys (several during a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from acr.errors import ServiceError
from acr.settings import Settings

ALGORITHM = "EdDSA"
LEEWAY_S = 5  # clock skew between hosts
MAX_TTL_S = 300  # a token meant to live longer is refused: a leaked one is worth minutes at most
OPS_PREFIX = "/v1/ops/"  # routes that take the ops credential (X-Ops-Token), not a service identity
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp"]


class Unauthorized(ServiceError):
    """No credential, or one that does not prove who sent it (bad signature, expired, not for us)."""

    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    """A proven caller this route does not admit."""

    status, code = 403, "forbidden"


class MissingServiceKey(RuntimeError):
    """Outside the embedded stack a service does not start without its key: it could call no one."""


@dataclass(frozen=True)
class Caller:
    """The verified caller of a request, and the rider it acts for (None when it acts for itself)."""

    service: str
    rider: str | None


def new_private_key() -> str:
    """A fresh Ed25519 private key, as ``ACR_SERVICE_KEY`` text."""
    return _text(Ed25519PrivateKey.generate().private_bytes_raw())


def public_key_of(private_key: str) -> str:
    """The public key (``ACR_SERVICE_PUBLIC_KEYS`` text) of a private key."""
    return _text(_private(private_key).public_key().public_bytes_raw())


def key_id(public_key: str) -> str:
    """A short stable id of a public key: the ``kid`` of the tokens it verifies."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


class ServiceCredentials:
    """What one service presents (its signing key, the ops token) and what it checks callers with (every
    service's public keys, the ops token)."""

    def __init__(
        self,
        service: str,
        *,
        private_key: str = "",
        public_keys: Mapping[str, Sequence[str]] | None = None,
        ops_token: str = "",
        ttl_s: float = 60,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self._signing = _private(private_key) if private_key else None
        self._kid = key_id(public_key_of(private_key)) if private_key else ""
        self._verifying = {
            (caller, key_id(key)): Ed25519PublicKey.from_public_bytes(_raw(key))
            for caller, keys in (public_keys or {}).items()
            for key in keys
        }
        self._ops_token = ops_token
        self._ttl_s = ttl_s
        self._now = now

    @classmethod
    def of(cls, service: str, settings: Settings) -> ServiceCredentials:
        """The credentials the settings give ``service``; ``MissingServiceKey`` outside the embedded stack
        without ``ACR_SERVICE_KEY``."""
        if not settings.service_key and not settings.embedded:
            raise MissingServiceKey(f"{service} needs its private key in ACR_SERVICE_KEY (docs/security.md)")
        return cls(
            service,
            private_key=settings.service_key,
            public_keys=settings.service_public_keys,
            ops_token=settings.ops_token,
            ttl_s=settings.service_token_ttl_s,
        )

    def token(self, callee: str, rider: str | None = None) -> str:
        """A token proving to ``callee`` that this service calls (for ``rider``), valid ``ttl_s``."""
        if self._signing is None:
            raise MissingServiceKey(f"{self.service} has no ACR_SERVICE_KEY: it cannot call {callee}")
        issued = int(self._now())
        claims = {
            "iss": self.service,
            "aud": callee,
            "sub": rider or self.service,
            "iat": issued,
            "exp": issued + int(self._ttl_s),
        }
        return jwt.encode(claims, self._signing, algorithm=ALGORITHM, headers={"kid": self._kid})

    def auth(self, callee: str, rider: str | None = None) -> httpx.Auth:
        """The httpx auth of calls to ``callee``: how every HTTP client of ACR presents itself."""
        return ServiceAuth(self, callee, rider)

    def ops_headers(self) -> dict[str, str]:
        return {"X-Ops-Token": self._ops_token} if self._ops_token else {}

    def verify(self, token: str | None) -> Caller:
        """The caller a token proves; ``Unauthorized`` unless it is an unexpired EdDSA token for this service
        signed by the key its ``iss`` and ``kid`` name."""
        if not token:
            raise Unauthorized("a service credential (Authorization: Bearer) is required")
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
            key = self._verifying.get((issuer, kid))
            if key is None:
                raise Unauthorized("the credential is signed by no key this service knows")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.service,
                issuer=issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the service credential is not valid: {exc}") from None
        if int(claims["exp"]) - int(claims["iat"]) > MAX_TTL_S:
            raise Unauthorized(f"the service credential lives longer than {MAX_TTL_S} s")
        subject = str(claims["sub"])
        return Caller(issuer, None if subject == issuer else subject)

    def ops_token_matches(self, given: str | None) -> bool:
        """Constant-time: an empty configured token matches nothing."""
        expected = self._ops_token.encode()
        return bool(expected) and hmac.compare_digest(expected, (given or "").encode("utf-8", "replace"))


class ServiceAuth(httpx.Auth):
    """Signs each request to one callee with a fresh token, and adds the ops token on ``/v1/ops/*``."""

    def __init__(self, credentials: ServiceCredentials, callee: str, rider: str | None) -> None:
        self._credentials = credentials
        self._callee = callee
        self._rider = rider

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._credentials.token(self._callee, self._rider)}"
        if request.url.path.startswith(OPS_PREFIX):
            request.headers.update(self._credentials.ops_headers())
        yield request


def service_token(env: Mapping[str, str], caller: str, callee: str, rider: str | None = None) -> str:
    """A token ``caller`` would send ``callee`` (acting for ``rider``), signed with the ``ACR_SERVICE_KEY``
    of ``env`` (e.g. a stack's ``service_env(caller)``): how tests call a service directly."""
    return ServiceCredentials(caller, private_key=env["ACR_SERVICE_KEY"]).token(callee, rider)


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 32:
        raise ValueError("an Ed25519 key is 32 bytes, base64url")
    return raw


def _private(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_raw(text))
