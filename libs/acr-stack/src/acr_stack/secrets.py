"""The secrets a local stack runs with: random ones, never the well-known development values.

``make run`` keeps one set per checkout in ``.run/secrets.env`` (git ignores ``.run/``; mode 0600), made
on the first run and reused after, so a rider's token survives a restart. A test stack gets fresh ones of
its own. A secret set in the environment wins over both. ``acr-stack secrets --env-file .env`` writes
the same kind of file for ``docker compose``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_VARIABLES = ("ACR_OPS_TOKEN", "ACR_TOKEN_SECRET")
CHECKOUT_SECRETS = Path(".run") / "secrets.env"
SECRET_BYTES = 32


def new_secrets() -> dict[str, str]:
    """A fresh random value (32 bytes, URL-safe text) for every secret."""
    return {name: secrets.token_urlsafe(SECRET_BYTES) for name in SECRET_VARIABLES}


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of an env file (comments and blank lines skipped); empty if there is none."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.lstrip().startswith("#")}


def ensure_secrets(path: Path) -> tuple[dict[str, str], list[str]]:
    """The secrets kept in the env file ``path``, adding a random value for each one it lacks (its other
    lines are kept; the file is private to its owner: 0600). Also returns the names it added."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = read_env_file(path)
    added = [name for name in SECRET_VARIABLES if not kept.get(name)]
    fresh = new_secrets()
    lines = [line for line in lines if line.split("=", 1)[0].strip() not in added]
    lines += [f"{name}={fresh[name]}" for name in added]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")
    os.chmod(temporary, 0o600)  # also when the file existed with looser bits
    temporary.replace(path)
    return {name: kept.get(name) or fresh[name] for name in SECRET_VARIABLES}, added


def checkout_secrets(path: Path = CHECKOUT_SECRETS) -> dict[str, str]:
    """This checkout's secrets for ``make run``: made on the first run, the same on every later one."""
    found = read_env_file(path)
    if all(found.get(name) for name in SECRET_VARIABLES):
        return {name: found[name] for name in SECRET_VARIABLES}
    return ensure_secrets(path)[0]


def overridden() -> list[str]:
    """The secrets the environment sets (they win over the stack's own)."""
    return [name for name in SECRET_VARIABLES if os.environ.get(name)]
