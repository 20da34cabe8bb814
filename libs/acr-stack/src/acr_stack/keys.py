"""Service key pairs for a stack: a fresh Ed25519 pair per service each time a stack is configured (never
written to disk by the embedded stack), each process given only its own private key plus every public key.

``acr-stack keys --env-file .env`` writes a pair per service for docker compose instead (file mode 0600).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from acr.identity import new_private_key, public_key_of
from acr.settings import SERVICE_PORTS

PRIVATE = "ACR_SERVICE_KEY"
PUBLIC = "ACR_SERVICE_PUBLIC_KEYS"


@dataclass(frozen=True)
class ServiceKeys:
    """Each service's private key, by service name."""

    private: dict[str, str]

    @classmethod
    def generate(cls, services: Iterable[str] = SERVICE_PORTS) -> ServiceKeys:
        return cls({service: new_private_key() for service in services})

    def public(self) -> dict[str, str]:
        return {service: public_key_of(key) for service, key in self.private.items()}

    def env(self, service: str | None) -> dict[str, str]:
        """The key settings of one service's process (``None``: the public keys only)."""
        env = {PUBLIC: json.dumps(self.public())}
        if service in self.private:
            env[PRIVATE] = self.private[service]
        return env

    def compose_env(self) -> dict[str, str]:
        """What docker-compose.yml requires: ``ACR_<SERVICE>_SERVICE_KEY`` per service, the public keys."""
        names = {
            f"ACR_{service.upper().replace('-', '_')}_SERVICE_KEY": key
            for service, key in self.private.items()
        }
        return names | {PUBLIC: json.dumps(self.public(), separators=(",", ":"))}


def write_env_file(path: Path, keys: ServiceKeys) -> None:
    """Set the key variables in an env file (other lines kept), readable by its owner only."""
    values = keys.compose_env()
    kept = [
        line
        for line in (path.read_text().splitlines() if path.exists() else [])
        if line.partition("=")[0].strip() not in values
    ]
    lines = [*kept, *(f"{name}='{value}'" for name, value in values.items())]
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text("\n".join(lines) + "\n")
