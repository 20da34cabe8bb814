"""Validation of the Docker runtime mode, without a Docker daemon.

* ``docker-compose.yml`` against the Compose specification (check-jsonschema's vendored
  ``vendor.compose-spec`` schema: no network needed);
* every Dockerfile through hadolint (error level, and warning level too);
* structure: each service's Dockerfile runs the right module on the right port, the compose
  file builds each ACR service from its own Dockerfile, wires the services together and pins
  LocalStack to a 4.x release.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TOPOLOGY_DOCKERFILE = ROOT / "tools" / "topology.Dockerfile"

# Folder -> port; the module is the folder with '_' for '-'. Mirrors acr.settings.SERVICE_PORTS.
SERVICE_PORTS: dict[str, int] = {
    "bff": 8000,
    "ride-manager": 8001,
    "address-finder": 8002,
    "car-dispatcher": 8003,
    "route-monitor": 8004,
    "payment": 8005,
    "reward": 8006,
    "car-simulator": 8007,
}
CITY_SERVICES = {"address-finder", "car-dispatcher", "car-simulator", "route-monitor"}
LIBS = ["libs/acr", "libs/acr-city"]
MEMBERS = [*LIBS, *SERVICE_PORTS]
CITY_CACHE = "/home/acr/.cache/acr-city"
LOCALSTACK_SERVICES = {"events", "sqs", "sns", "dynamodb", "kinesis", "sts"}

ALL_DOCKERFILES = [ROOT / s / "Dockerfile" for s in SERVICE_PORTS] + [TOPOLOGY_DOCKERFILE]


def _module(service: str) -> str:
    return service.replace("-", "_")


def _tool(name: str) -> str:
    """A console script of the dev environment: next to sys.executable, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found next to {sys.executable} nor on PATH (uv sync installs it)")
    return found


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


# --------------------------------------------------------------------------- Dockerfile parsing


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
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
        out.append((keyword.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return out


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions(path):
        if keyword == "FROM":
            stages.append([])
        assert stages, f"{path}: instruction before the first FROM"
        stages[-1].append((keyword, args))
    return stages


def _last(stage: list[tuple[str, str]], keyword: str) -> str | None:
    values = [args for kw, args in stage if kw == keyword]
    return values[-1] if values else None


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _copy_sources(path: Path) -> list[str]:
    """Sources of the COPY instructions that read the build context (not --from=...)."""
    sources: list[str] = []
    for keyword, args in _instructions(path):
        if keyword != "COPY":
            continue
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


def _sync_commands(path: Path) -> list[str]:
    return [args for kw, args in _instructions(path) if kw == "RUN" and "uv sync" in args]


PINNED_UV = re.compile(
    r"^ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+(-python3\.11-bookworm-slim)?(@sha256:[0-9a-f]{64})?$"
)
PINNED_PYTHON = re.compile(r"^python:3\.11(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?$")


def _check_common(path: Path) -> list[tuple[str, str]]:
    """Checks shared by the service images and the topology image; returns the runtime stage."""
    stages = _stages(path)
    assert len(stages) >= 2, f"{path}: expected a multi-stage build"
    builder, runtime = stages[0], stages[-1]

    base = builder[0][1].split()[0]
    uv_from = [a for kw, a in builder if kw == "COPY" and "--from=ghcr.io/astral-sh/uv" in a]
    if base.startswith("ghcr.io/astral-sh/uv"):
        assert PINNED_UV.match(base), f"{path}: uv builder image not pinned: {base}"
    else:
        assert PINNED_PYTHON.match(base), (
            f"{path}: builder base not a pinned python 3.11 slim-bookworm: {base}"
        )
        assert uv_from, f"{path}: uv is neither the builder image nor copied from ghcr.io/astral-sh/uv"
        image = shlex.split(uv_from[0])[0].removeprefix("--from=")
        assert PINNED_UV.match(image), f"{path}: uv image not pinned: {image}"

    runtime_base = runtime[0][1].split()[0]
    assert PINNED_PYTHON.match(runtime_base), f"{path}: runtime base not pinned: {runtime_base}"
    assert runtime_base.split(":")[1] != "latest"

    env = " ".join(a for kw, a in builder if kw == "ENV")
    for setting in ("UV_COMPILE_BYTECODE=1", "UV_LINK_MODE=copy", "UV_PYTHON_DOWNLOADS=never"):
        assert setting in env, f"{path}: builder lacks {setting}"

    sources = _copy_sources(path)
    for needed in ["pyproject.toml", "uv.lock", *(f"{m}/pyproject.toml" for m in MEMBERS)]:
        assert needed in sources, f"{path}: does not COPY {needed}"
    for source in sources:
        assert (ROOT / source).exists(), f"{path}: COPY source {source} is not in the repository"

    syncs = _sync_commands(path)
    assert len(syncs) == 2, f"{path}: expected a deps-only sync then a full sync, got {syncs}"
    assert "--no-install-workspace" in syncs[0] and "--no-install-workspace" not in syncs[1]
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in sync, f"{path}: '{sync}' lacks {flag}"

    copies = [a for kw, a in runtime if kw == "COPY"]
    assert any("/app/.venv" in c and "--from=builder" in c for c in copies), f"{path}: venv not copied"
    user = _last(runtime, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0"), f"{path}: runtime runs as root"
    env = " ".join(a for kw, a in runtime if kw == "ENV")
    assert "/app/.venv/bin" in env, f"{path}: the venv is not on PATH"
    return runtime


# --------------------------------------------------------------------------- compose helpers


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def _default(value: object) -> str:
    """The value with every ${VAR}, ${VAR-default} and ${VAR:-default} replaced by its default."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", str(value))


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _default(v) for k, v in env.items()}


# --------------------------------------------------------------------------- tests: tools


def test_compose_file_matches_the_compose_spec() -> None:
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize("threshold", ["error", "warning"])
def test_dockerfile_passes_hadolint(dockerfile: Path, threshold: str) -> None:
    assert dockerfile.is_file(), f"{dockerfile} is missing"
    result = _run([_tool("hadolint"), "--no-color", "--failure-threshold", threshold, str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- tests: Dockerfiles


def test_port_table_matches_the_settings() -> None:
    from acr.settings import SERVICE_PORTS as SETTINGS_PORTS

    assert SETTINGS_PORTS == SERVICE_PORTS


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_service_dockerfile_runs_its_module_on_its_port(service: str) -> None:
    path = ROOT / service / "Dockerfile"
    assert path.is_file(), f"{service} has no Dockerfile"
    port = SERVICE_PORTS[service]
    runtime = _check_common(path)

    cmd = _last(runtime, "CMD")
    assert cmd is not None, f"{path}: no CMD"
    assert _exec_form(cmd) == [
        "uvicorn",
        f"{_module(service)}.main:app",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]
    assert (ROOT / service / "src" / _module(service)).is_dir(), (
        f"no package {_module(service)} in {service}/src"
    )

    exposed = {p.split("/")[0] for kw, a in runtime if kw == "EXPOSE" for p in a.split()}
    assert exposed == {str(port)}, f"{path}: EXPOSE {exposed}, expected {port}"

    healthcheck = _last(runtime, "HEALTHCHECK")
    assert healthcheck is not None, f"{path}: no HEALTHCHECK"
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck and "urllib" in healthcheck

    for sync in _sync_commands(path):
        assert f"--package acr-{service}" in sync, f"{path}: '{sync}' does not select acr-{service}"
    sources = _copy_sources(path)
    assert f"{service}/src" in sources and any(s.rstrip("/") == "libs" for s in sources)


def test_service_dockerfiles_have_the_same_shape() -> None:
    """Only the folder, module and port differ between the 8 service Dockerfiles."""

    def normalised(service: str) -> str:
        lines = (ROOT / service / "Dockerfile").read_text().splitlines()
        # The member pyproject.toml COPY lines name every service: checked by _check_common.
        text = "\n".join(line for line in lines if not re.fullmatch(r"COPY \S+/pyproject\.toml \S+", line))
        text = text.replace(f"{_module(service)}.main:app", "<module>.main:app")
        text = text.replace(service, "<service>").replace(_module(service), "<module>")
        return text.replace(str(SERVICE_PORTS[service]), "<port>")

    shapes = {service: normalised(service) for service in SERVICE_PORTS}
    reference = shapes["bff"]
    different = [service for service, shape in shapes.items() if shape != reference]
    assert not different, f"these Dockerfiles differ from bff/Dockerfile in shape: {different}"


def test_topology_dockerfile_installs_every_package_and_applies() -> None:
    runtime = _check_common(TOPOLOGY_DOCKERFILE)
    for sync in _sync_commands(TOPOLOGY_DOCKERFILE):
        assert "--all-packages" in sync, f"'{sync}' does not install every workspace package"
    sources = _copy_sources(TOPOLOGY_DOCKERFILE)
    for service in SERVICE_PORTS:
        assert f"{service}/src" in sources, f"topology image lacks {service}/src (its acr.topology slice)"
    cmd = _last(runtime, "CMD")
    assert cmd is not None and _exec_form(cmd) == ["acr-topology", "apply"]


# --------------------------------------------------------------------------- tests: .dockerignore


def _ignored(path: str, patterns: list[str]) -> bool:
    """Rough .dockerignore matching (enough for the patterns used here; '!' re-includes)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        hit = False
        for prefix in prefixes:
            for cand in candidates:
                if cand.startswith("**/"):
                    tail = cand[3:]
                    segments = prefix.split("/")
                    if any(fnmatch.fnmatchcase("/".join(segments[i:]), tail) for i in range(len(segments))):
                        hit = True
                elif fnmatch.fnmatchcase(prefix, cand):
                    hit = True
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for unwanted in (".venv", ".git", ".cache", ".run", "node_modules", "libs/acr/__pycache__", "bff/tests"):
        assert _ignored(unwanted, patterns), f".dockerignore does not exclude {unwanted}"
    for dockerfile in ALL_DOCKERFILES:
        for source in _copy_sources(dockerfile):
            assert not _ignored(source, patterns), f".dockerignore excludes {source} needed by {dockerfile}"
    for member in MEMBERS:
        assert not _ignored(f"{member}/src/x.py", patterns)


# --------------------------------------------------------------------------- tests: compose


def test_compose_runs_localstack_topology_and_every_service() -> None:
    services = _compose()["services"]
    assert set(services) == {"localstack", "topology", *SERVICE_PORTS}


def test_localstack_is_pinned_to_a_4x_release() -> None:
    localstack = _compose()["services"]["localstack"]
    image = localstack["image"]
    name, _, tag = image.partition(":")
    assert name == "localstack/localstack"
    assert tag and tag != "latest" and re.fullmatch(r"4\.\d+(\.\d+)?", tag), f"not a pinned 4.x tag: {image}"
    env = _environment(localstack)
    assert set(env["SERVICES"].split(",")) >= LOCALSTACK_SERVICES
    assert "LOCALSTACK_AUTH_TOKEN" in localstack["environment"]
    assert any(str(p).endswith("4566:4566") for p in localstack["ports"])
    test = " ".join(localstack["healthcheck"]["test"])
    assert "http://localhost:4566/_localstack/health" in test


def test_topology_job_runs_once_after_localstack() -> None:
    topology = _compose()["services"]["topology"]
    assert Path(topology["build"]["context"]) in (Path("."), Path("./"))
    assert (ROOT / topology["build"]["dockerfile"]).resolve() == TOPOLOGY_DOCKERFILE
    assert topology["restart"] == "no"
    assert topology["depends_on"]["localstack"]["condition"] == "service_healthy"
    assert _environment(topology)["ACR_AWS_ENDPOINT_URL"] == "http://localstack:4566"


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_compose_service_builds_its_dockerfile_and_is_wired(service: str) -> None:
    spec = _compose()["services"][service]
    build = spec["build"]
    assert (ROOT / build["context"]).resolve() == ROOT, (
        f"{service}: build context must be the repository root"
    )
    assert (ROOT / build["dockerfile"]).resolve() == (ROOT / service / "Dockerfile").resolve()
    assert spec["depends_on"]["topology"]["condition"] == "service_completed_successfully"

    env = _environment(spec)
    expected = {
        "ACR_AWS_ENDPOINT_URL": "http://localstack:4566",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "ACR_AWS_REGION": "us-east-1",
        "ACR_CITY": "small",
        "ACR_OPS_TOKEN": "dev-ops-token",
        "ACR_SIM_SPEED": "30",
    }
    for other, port in SERVICE_PORTS.items():
        expected[f"ACR_{_module(other).upper()}_URL"] = f"http://{other}:{port}"
    for key, value in expected.items():
        assert env.get(key) == value, f"{service}: {key}={env.get(key)!r}, expected {value!r}"

    if service == "bff":
        assert spec["ports"] == ["8000:8000"]
    else:
        assert "ports" not in spec, f"{service} publishes a host port; only the bff should"

    if service in CITY_SERVICES:
        assert env.get("ACR_CITY_CACHE_DIR") == CITY_CACHE
        volumes = spec.get("volumes", [])
        assert any(str(v).split(":")[1:] == [CITY_CACHE] for v in volumes), f"{service}: no city cache volume"
        volume_name = next(str(v).split(":")[0] for v in volumes if str(v).endswith(CITY_CACHE))
        assert volume_name in (_compose().get("volumes") or {}), f"{volume_name} is not a named volume"

    # Health: the compose healthcheck, or else the image's HEALTHCHECK (checked per Dockerfile).
    if "healthcheck" in spec:
        assert not spec["healthcheck"].get("disable", False)
    else:
        assert _last(_stages(ROOT / service / "Dockerfile")[-1], "HEALTHCHECK") is not None
