"""What Docker would make of ``Dockerfile`` and ``docker-compose.yml``, without Docker.

* :func:`instructions` / :func:`stages`: the Dockerfile's instructions, continuation lines joined;
* :func:`image`: the configuration of one build target for given build args (ENV after ``ARG``/``ENV``
  substitution, ``CMD``, ``HEALTHCHECK``, ``EXPOSE``, ``USER``, ``WORKDIR``, the user's home), following
  ``FROM <stage>`` chains the way the builder does;
* :func:`load_compose`: the compose file with its ``${VAR...}`` interpolated the way ``docker compose``
  does it, by default with no variable set (the documented defaults).

Used by the structure checks (``test_docker_files.py``) and the compose wiring test
(``compose_wiring.py``).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acr_stack.keys import ServiceKeys
from acr_stack.secrets import new_secrets

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"

# The environment of the base image (python:3.11.x-slim-bookworm) that the Dockerfile builds on.
BASE_IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}

Instruction = tuple[str, str]


# --------------------------------------------------------------------------- Dockerfile


def instructions(path: Path) -> list[Instruction]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
    assert not pending, f"{path}: dangling line continuation"
    return out


@dataclass
class Stage:
    name: str
    base: str  # an image reference, or the name of an earlier stage
    body: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.body if kw == keyword]

    def last(self, keyword: str) -> str | None:
        values = self.all(keyword)
        return values[-1] if values else None


def stages(path: Path) -> list[Stage]:
    found: list[Stage] = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            words = args.split()
            base = next(w for w in words if not w.startswith("--"))
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else str(len(found))
            found.append(Stage(name, base, []))
            continue
        assert found, f"{path}: {keyword} before the first FROM"
        found[-1].body.append((keyword, args))
    return found


def stage(path: Path, name: str) -> Stage:
    return next(s for s in stages(path) if s.name == name)


_DOCKER_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>\w+))")


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Dockerfile substitution: ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR:+word}``."""

    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        current = variables.get(name, "")
        if match.group("op") == "-":
            return current or match.group("word")
        if match.group("op") == "+":
            return match.group("word") if current else ""
        return current

    return _DOCKER_VARIABLE.sub(value, text)


def exec_form(args: str) -> list[str]:
    """A ``CMD``/``ENTRYPOINT``/``HEALTHCHECK CMD`` argument: JSON exec form, else shell form."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
        return value
    return ["/bin/sh", "-c", args]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def seconds(duration: str | int | float) -> float:
    """A Docker duration (``10s``, ``1m30s`` is not used here) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    match = _DURATION.match(duration.strip())
    assert match, f"unsupported duration {duration!r}"
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return float(match.group(1)) * scale


@dataclass
class HealthCheck:
    argv: list[str]
    interval_s: float = 30
    timeout_s: float = 30
    start_period_s: float = 0
    retries: int = 3


def healthcheck(args: str) -> HealthCheck | None:
    """A Dockerfile ``HEALTHCHECK`` (``NONE`` or ``[OPTIONS] CMD command``)."""
    if args.strip().upper() == "NONE":
        return None
    options, _, command = args.partition(" CMD ")
    check = HealthCheck(exec_form(command.strip()))
    for option in options.split():
        key, _, value = option.removeprefix("--").partition("=")
        if key == "retries":
            check.retries = int(value)
        else:
            setattr(check, key.replace("-", "_") + "_s", seconds(value))
    return check


@dataclass
class Image:
    """The configuration of one built image, as ``docker inspect`` would show it."""

    env: dict[str, str] = field(default_factory=lambda: dict(BASE_IMAGE_ENV))
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    healthcheck: HealthCheck | None = None
    exposed: set[int] = field(default_factory=set)
    user: str = "root"
    workdir: str = "/"
    homes: dict[str, str] = field(default_factory=lambda: {"root": "/root", "0": "/root"})

    @property
    def home(self) -> str:
        """HOME of the image's USER (Docker sets it from the user's passwd entry)."""
        return self.homes.get(self.user.split(":")[0], "/")


_USERADD = re.compile(r"useradd\b(?P<options>[^&;|]*?)\s(?P<name>[\w-]+)\s*(?:$|&&|;)")


def _apply(image: Image, keyword: str, args: str, variables: dict[str, str]) -> None:
    """One instruction of a stage, on the image being built."""
    if keyword == "ENV":
        image.env.update(_env_pairs(substitute(args, variables)))
        variables.update(image.env)
    elif keyword in ("CMD", "ENTRYPOINT"):
        setattr(image, keyword.lower(), exec_form(args))
    elif keyword == "HEALTHCHECK":
        image.healthcheck = healthcheck(args)
    elif keyword == "EXPOSE":
        image.exposed |= {int(p.split("/")[0]) for p in substitute(args, variables).split()}
    elif keyword == "USER":
        image.user = substitute(args, variables)
    elif keyword == "WORKDIR":
        image.workdir = substitute(args, variables)
    elif keyword == "RUN":
        for match in _USERADD.finditer(args):
            home = re.search(r"--home-dir\s+(\S+)", match.group("options"))
            uid = re.search(r"--uid\s+(\d+)", match.group("options"))
            for key in [match.group("name"), *(uid.groups() if uid else ())]:
                image.homes[key] = home.group(1) if home else f"/home/{match.group('name')}"


def _env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def image(path: Path, target: str | None = None, build_args: Mapping[str, str] | None = None) -> Image:
    """The image that ``docker build --target <target> --build-arg ...`` would produce (default target:
    the last stage). Stage ``ARG``s take the build args; ``FROM <stage>`` inherits that stage's image."""
    by_name = {s.name: s for s in stages(path)}
    chain = [by_name[target] if target else stages(path)[-1]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    built = Image()
    for current in reversed(chain):
        variables = dict(built.env)  # ARGs are scoped to their stage; ENV is inherited
        for keyword, args in current.body:
            if keyword == "ARG":
                name, _, default = args.partition("=")
                variables[name] = (build_args or {}).get(name, default)
            else:
                _apply(built, keyword, args, variables)
    return built


def stage_variables(path: Path, name: str, build_args: Mapping[str, str]) -> dict[str, str]:
    """The ARGs of one stage for given build args (for checking its RUN and COPY lines)."""
    variables: dict[str, str] = {}
    for keyword, args in stage(path, name).body:
        if keyword == "ARG":
            arg, _, default = args.partition("=")
            variables[arg] = build_args.get(arg, default)
    return variables


def copy_sources(body: list[Instruction], variables: Mapping[str, str] | None = None) -> list[str]:
    """Sources of the COPY instructions that read the build context (not ``--from=...``)."""
    sources: list[str] = []
    for keyword, args in body:
        if keyword != "COPY":
            continue
        words = shlex.split(args if variables is None else substitute(args, variables))
        if any(w.startswith("--from") for w in words):
            continue
        sources.extend([w for w in words if not w.startswith("--")][:-1])
    return sources


def sync_commands(body: list[Instruction], variables: Mapping[str, str] | None = None) -> list[str]:
    return [substitute(args, variables or {}) for kw, args in body if kw == "RUN" and "uv sync" in args]


# --------------------------------------------------------------------------- compose

_COMPOSE_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


# What ``acr-stack secrets --env-file .env`` and ``acr-stack keys --env-file .env`` write: every variable
# docker-compose.yml requires (``${VAR:?}``).
COMPOSE_SECRETS = new_secrets() | ServiceKeys.generate().compose_env()


def interpolate(text: str, shell: Mapping[str, str]) -> str:
    """Compose interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR-d}``, ``${VAR:-d}``, ``${VAR?e}``,
    ``${VAR:?e}``, ``${VAR+r}``, ``${VAR:+r}``; ``shell`` is the environment ``docker compose`` runs in."""

    def value(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        op, word = match.group("op") or "", match.group("word") or ""
        is_set = name in shell
        usable = is_set and (shell[name] != "" or not op.startswith(":"))
        if op.endswith("-"):
            return shell[name] if usable else word
        if op.endswith("?"):
            if not usable:
                raise ValueError(f"required variable {name} is missing: {word}")
            return shell[name]
        if op.endswith("+"):
            return word if usable else ""
        return shell.get(name, "")

    return _COMPOSE_VARIABLE.sub(value, text)


def _interpolated(node: Any, shell: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, shell)
    if isinstance(node, list):
        return [_interpolated(item, shell) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, shell) for key, value in node.items()}
    return node


def load_compose(path: Path = COMPOSE_FILE, shell: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file, interpolated in ``shell`` (default: only the secrets that ``acr-stack secrets``
    writes to the compose ``.env`` are set, every other variable keeps its default)."""
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a mapping"
    return dict(_interpolated(loaded, COMPOSE_SECRETS if shell is None else shell))


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's ``environment`` (mapping or ``KEY=VALUE`` list) as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): _scalar(v) for k, v in env.items()}


def _scalar(value: object) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_of(service: Mapping[str, Any], compose_dir: Path) -> tuple[Path, str | None, dict[str, str]]:
    """(Dockerfile, target, build args) of a compose service that builds its image."""
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (compose_dir / build.get("context", ".")).resolve()
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    args = build.get("args") or {}
    if isinstance(args, list):
        args = dict(item.split("=", 1) for item in args)
    return dockerfile, build.get("target"), {str(k): str(v) for k, v in args.items()}


def container_port(port: str | int | Mapping[str, Any]) -> tuple[int | None, int]:
    """(published host port or None, container port) of one ``ports`` entry (short or long syntax)."""
    if isinstance(port, Mapping):
        published = port.get("published")
        return (int(published) if published else None), int(port["target"])
    parts = str(port).split("/")[0].split(":")
    return (int(parts[-2]) if len(parts) > 1 else None), int(parts[-1])
