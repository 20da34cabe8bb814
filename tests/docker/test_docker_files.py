"""Validation of the Docker runtime mode, without a Docker daemon.

* ``docker-compose.yml`` against the Compose specification (check-jsonschema's vendored
  ``vendor.compose-spec`` schema: no network needed);
* the one ``Dockerfile`` through hadolint (error level, and warning level too);
* structure: what the ``service`` target builds for each service's build args (its package, its
  module run by ``python -m acr.serve`` on its port, its health check), what the ``topology`` target
  builds, and how the compose file builds and wires every container.

``test_compose_wiring.py`` then runs what the compose file describes, as host processes.
"""

from __future__ import annotations

import ast
import fnmatch
import glob
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from docker_model import (
    COMPOSE_FILE,
    COMPOSE_SECRETS,
    DOCKERFILE,
    ROOT,
    Stage,
    build_of,
    container_port,
    copy_sources,
    environment,
    image,
    load_compose,
    stage,
    stage_variables,
    stages,
    sync_commands,
)

from acr.settings import Settings

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
CITY_CACHE = "/home/acr/.cache/acr-city"
LOCALSTACK_SERVICES = {"events", "sqs", "sns", "dynamodb", "kinesis", "sts"}
SERVE_VARIABLES = {"ACR_SERVICE", "ACR_PORT", "ACR_HOST"}  # read by acr.serve (libs/acr/src/acr/serve.py)
DEV_ONLY = {"acr-testkit"}  # workspace members that no image may install
IMAGE_VENV = "/app/.venv"
SERVICE_TARGET, TOPOLOGY_TARGET = "service", "topology"


def _module(service: str) -> str:
    return service.replace("-", "_")


def _build_args(service: str) -> dict[str, str]:
    return {"SERVICE": service, "PORT": str(SERVICE_PORTS[service])}


def _workspace_members() -> list[str]:
    """Every workspace member folder, from the root pyproject.toml's globs (a new member shows up)."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    folders = {Path(p) for pattern in workspace["members"] for p in glob.glob(pattern, root_dir=ROOT)}
    return sorted(str(f) for f in folders if (ROOT / f / "pyproject.toml").is_file())


def _package(member: str) -> str:
    return str(tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]["name"])


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


PINNED_UV = re.compile(
    r"^ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+(-python3\.11-bookworm-slim)?(@sha256:[0-9a-f]{64})?$"
)
PINNED_PYTHON = re.compile(r"^python:3\.11(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?$")


def _venv_builders() -> list[Stage]:
    """The stages that build a venv (they run ``uv sync``)."""
    return [s for s in stages(DOCKERFILE) if sync_commands(s.body)]


def _final_targets() -> list[Stage]:
    """The stages that copy a built venv in: the images compose runs."""
    return [s for s in stages(DOCKERFILE) if any(f"{IMAGE_VENV} {IMAGE_VENV}" in a for a in s.all("COPY"))]


# --------------------------------------------------------------------------- tests: tools


def test_compose_file_matches_the_compose_spec() -> None:
    result = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


TRACING_OVERLAY = ROOT / "docker-compose.tracing.yml"


def test_tracing_overlay_matches_the_compose_spec_and_traces_every_service() -> None:
    """The Jaeger overlay: valid compose, a pinned image, and every ACR service of the base file sends
    its spans to Jaeger's OTLP/HTTP port."""
    result = _run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(TRACING_OVERLAY)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    overlay = load_compose(TRACING_OVERLAY)["services"]
    base = load_compose(COMPOSE_FILE)["services"]
    name, tag = overlay["jaeger"]["image"].rsplit(":", 1)
    assert name == "jaegertracing/all-in-one" and re.fullmatch(r"\d+\.\d+\.\d+", tag), overlay["jaeger"][
        "image"
    ]
    traced = {service for service in overlay if service != "jaeger"}
    assert traced == set(SERVICE_PORTS) and traced <= set(base)
    for service in traced:
        assert environment(overlay[service])["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", service


@pytest.mark.parametrize("threshold", ["error", "warning"])
def test_dockerfile_passes_hadolint(threshold: str) -> None:
    result = _run([_tool("hadolint"), "--no-color", "--failure-threshold", threshold, str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_one_dockerfile() -> None:
    """Every image is built from the root Dockerfile (targets and build args), none from its own."""
    tracked = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"]).stdout.splitlines()
    dockerfiles = [p for p in tracked if re.search(r"(^|/)(Dockerfile|[^/]*\.Dockerfile)$", p)]
    dockerfiles = [p for p in dockerfiles if (ROOT / p).exists()]
    assert dockerfiles == ["Dockerfile"]


# --------------------------------------------------------------------------- tests: the Dockerfile


def test_port_table_matches_the_settings() -> None:
    from acr.settings import SERVICE_PORTS as SETTINGS_PORTS

    assert SETTINGS_PORTS == SERVICE_PORTS


def test_base_images_and_uv_are_pinned() -> None:
    for current in stages(DOCKERFILE):
        if current.base in {s.name for s in stages(DOCKERFILE)}:
            continue
        assert PINNED_PYTHON.match(current.base), f"stage {current.name}: base not pinned: {current.base}"
    uv_images = [
        shlex.split(a)[0].removeprefix("--from=")
        for s in stages(DOCKERFILE)
        for a in s.all("COPY")
        if "--from=ghcr.io/astral-sh/uv" in a
    ]
    assert uv_images, "uv is not copied from ghcr.io/astral-sh/uv"
    assert all(PINNED_UV.match(i) for i in uv_images), uv_images


def test_the_workspace_stage_copies_every_member_manifest_before_any_source() -> None:
    """uv resolves the whole workspace, so every member's pyproject.toml (and the lock) is needed;
    no source is copied in that stage, so the dependency layers stay cached until the lock changes."""
    workspace = stages(DOCKERFILE)[0]
    env = " ".join(workspace.all("ENV"))
    for setting in ("UV_COMPILE_BYTECODE=1", "UV_LINK_MODE=copy", "UV_PYTHON_DOWNLOADS=never"):
        assert setting in env, f"{workspace.name} lacks {setting}"
    assert f"UV_PROJECT_ENVIRONMENT={IMAGE_VENV}" in env
    sources = copy_sources(workspace.body)
    expected = ["pyproject.toml", "uv.lock", *(f"{m}/pyproject.toml" for m in _workspace_members())]
    assert sorted(sources) == sorted(expected)


def test_each_venv_is_built_deps_first_then_the_workspace_packages_as_wheels() -> None:
    builders = _venv_builders()
    assert {b.name for b in builders} == {"service-build", "topology-build"}
    for builder in builders:
        assert builder.base == stages(DOCKERFILE)[0].name, f"{builder.name} does not build on the workspace"
        syncs = sync_commands(builder.body)
        assert len(syncs) == 2, f"{builder.name}: expected a deps-only sync then a full sync, got {syncs}"
        assert "--no-install-workspace" in syncs[0] and "--no-install-workspace" not in syncs[1]
        for sync in syncs:
            for flag in ("--frozen", "--no-dev", "--no-editable", "--mount=type=cache"):
                assert flag in sync, f"{builder.name}: '{sync}' lacks {flag}"
            assert "--all-packages" not in sync, f"{builder.name}: --all-packages installs {DEV_ONLY}"
        kinds = ["sync" if kw == "RUN" and "uv sync" in a else kw for kw, a in builder.body]
        first_source = kinds.index("COPY")
        assert kinds.index("sync") < first_source < len(kinds) - 1 - kinds[::-1].index("sync"), (
            f"{builder.name}: the sources must be copied between the deps-only and the full sync"
        )


def test_the_runtime_shared_by_every_image_uses_no_build_arg() -> None:
    """The user and the city cache folder are one layer for all nine images."""
    runtime = stage(DOCKERFILE, "runtime")
    assert PINNED_PYTHON.match(runtime.base)
    assert not runtime.all("ARG")
    env = " ".join(runtime.all("ENV"))
    assert f"{IMAGE_VENV}/bin" in env, "the venv is not on PATH"
    assert any(CITY_CACHE in run and "chown" in run for run in runtime.all("RUN"))
    assert {t.name for t in _final_targets()} == {SERVICE_TARGET, TOPOLOGY_TARGET}
    for target in _final_targets():
        assert target.base == runtime.name
        user = target.last("USER")
        assert user is not None and user.split(":")[0] not in ("root", "0"), f"{target.name} runs as root"


def test_the_service_target_is_the_default_and_needs_both_build_args() -> None:
    service_build, service = stage(DOCKERFILE, "service-build"), stage(DOCKERFILE, SERVICE_TARGET)
    assert stages(DOCKERFILE)[-1].name == SERVICE_TARGET, "plain `docker build` builds a service"
    for current in (service_build, service):
        assert sorted(current.all("ARG")) == ["PORT", "SERVICE"], f"{current.name}: ARGs without defaults"
    guard = next(i for i, (kw, a) in enumerate(service_build.body) if kw == "RUN")
    assert "SERVICE" in service_build.body[guard][1] and "PORT" in service_build.body[guard][1]
    assert "exit 1" in service_build.body[guard][1] and "uv sync" not in service_build.body[guard][1]
    assert f"--from={service_build.name} {IMAGE_VENV}" in " ".join(service.all("COPY"))


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_the_service_image_runs_its_package_on_its_port(service: str) -> None:
    port = SERVICE_PORTS[service]
    built = image(DOCKERFILE, SERVICE_TARGET, _build_args(service))
    assert built.cmd == ["python", "-m", "acr.serve"] and built.entrypoint == []
    assert built.healthcheck is not None
    assert built.healthcheck.argv == ["python", "-m", "acr.serve", "--probe"]
    assert built.env["ACR_SERVICE"] == service and built.env["ACR_PORT"] == str(port)
    assert built.env["ACR_HOST"] == "0.0.0.0", "reachable from the other containers"
    assert built.exposed == {port}
    assert built.env["PATH"].startswith(f"{IMAGE_VENV}/bin:")

    variables = stage_variables(DOCKERFILE, "service-build", _build_args(service))
    for sync in sync_commands(stage(DOCKERFILE, "service-build").body, variables):
        assert f'--package "{_package(service)}"' in sync or f"--package {_package(service)}" in sync
    sources = copy_sources(stage(DOCKERFILE, "service-build").body, variables)
    assert f"{service}/src" in sources and "libs/" in sources
    # acr.serve serves <module>.main:create_app
    main = ROOT / service / "src" / _module(service) / "main.py"
    tree = ast.parse(main.read_text()).body
    names = {n.name for n in tree if isinstance(n, ast.FunctionDef)}
    names |= {a.asname or a.name for n in tree if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "create_app" in names, f"{main} has no create_app for acr.serve"


def test_the_topology_image_installs_every_service_package_and_applies() -> None:
    built = image(DOCKERFILE, TOPOLOGY_TARGET)
    assert built.cmd == ["acr-topology", "apply"] and built.healthcheck is None
    topology_build = stage(DOCKERFILE, "topology-build")
    packages = {_package(s) for s in SERVICE_PORTS}
    for sync in sync_commands(topology_build.body):
        selected = set(re.findall(r"--package\s+\"?([\w-]+)", sync))
        assert selected == packages, f"'{sync}' installs {selected ^ packages} too many or too few"
    sources = copy_sources(topology_build.body)
    for service in SERVICE_PORTS:
        assert f"{service}/src" in sources, f"topology image lacks {service}/src (its acr.topology slice)"
    scripts = tomllib.loads((ROOT / "libs/acr/pyproject.toml").read_text())["project"]["scripts"]
    assert "acr-topology" in scripts


def test_no_image_installs_a_dev_only_package() -> None:
    for builder in _venv_builders():
        for sync in sync_commands(builder.body):
            assert not any(p in sync for p in DEV_ONLY), sync


# --------------------------------------------------------------------------- tests: .dockerignore


def _ignored(path: str, patterns: list[str]) -> bool:
    """Rough .dockerignore matching (enough for the patterns used here; '!' re-includes)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        hit = any(_matches(prefix, cand) for prefix in prefixes for cand in candidates)
        if hit:
            ignored = not negate
    return ignored


def _matches(prefix: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        segments = prefix.split("/")
        return any(fnmatch.fnmatchcase("/".join(segments[i:]), pattern[3:]) for i in range(len(segments)))
    return fnmatch.fnmatchcase(prefix, pattern)


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for unwanted in (".venv", ".git", ".cache", ".run", "node_modules", "libs/acr/__pycache__", "bff/tests"):
        assert _ignored(unwanted, patterns), f".dockerignore does not exclude {unwanted}"
    needed = [source for s in stages(DOCKERFILE) for source in copy_sources(s.body)]
    for service in SERVICE_PORTS:
        variables = stage_variables(DOCKERFILE, "service-build", _build_args(service))
        needed += copy_sources(stage(DOCKERFILE, "service-build").body, variables)
    for source in needed:
        if "$" in source:
            continue  # the unexpanded ${SERVICE}/src: checked per service above
        assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
        assert not _ignored(source, patterns), f".dockerignore excludes {source}, which the Dockerfile copies"
    for member in _workspace_members():
        assert not _ignored(f"{member}/src/x.py", patterns)


# --------------------------------------------------------------------------- tests: compose


def test_compose_runs_localstack_topology_and_every_service() -> None:
    services = load_compose()["services"]
    assert set(services) == {"localstack", "topology", *SERVICE_PORTS}


def test_localstack_is_pinned_to_a_4x_release() -> None:
    localstack = load_compose()["services"]["localstack"]
    image_name = localstack["image"]
    name, _, tag = image_name.partition(":")
    assert name == "localstack/localstack"
    assert tag != "latest" and re.fullmatch(r"4\.\d+(\.\d+)?", tag), f"not a pinned 4.x tag: {image_name}"
    env = environment(localstack)
    assert set(env["SERVICES"].split(",")) >= LOCALSTACK_SERVICES
    assert "LOCALSTACK_AUTH_TOKEN" in localstack["environment"]
    assert [container_port(p) for p in localstack["ports"]] == [(4566, 4566)]
    assert any(str(p).startswith("127.0.0.1:") for p in localstack["ports"]), "published on loopback only"
    test = " ".join(localstack["healthcheck"]["test"])
    assert "http://localhost:4566/_localstack/health" in test


def test_topology_job_runs_once_after_localstack() -> None:
    topology = load_compose()["services"]["topology"]
    assert build_of(topology, ROOT) == (DOCKERFILE, TOPOLOGY_TARGET, {})
    assert topology["restart"] == "no"
    assert topology["depends_on"]["localstack"]["condition"] == "service_healthy"
    assert environment(topology)["ACR_AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert "command" not in topology and "entrypoint" not in topology, "the image's CMD applies"


def test_every_acr_variable_compose_sets_is_a_setting() -> None:
    """pydantic-settings ignores unknown ACR_* names, so a misspelt one would silently keep a default."""
    known = {f"ACR_{name.upper()}" for name in Settings.model_fields} | SERVE_VARIABLES
    for name, spec in load_compose()["services"].items():
        unknown = {k for k in environment(spec) if k.startswith("ACR_")} - known
        assert not unknown, f"{name}: no such setting {sorted(unknown)} (see libs/acr/src/acr/settings.py)"


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_compose_service_builds_the_service_target_and_is_wired(service: str) -> None:
    compose = load_compose()
    spec = compose["services"][service]
    assert build_of(spec, ROOT) == (DOCKERFILE, SERVICE_TARGET, _build_args(service))
    assert spec["depends_on"]["topology"]["condition"] == "service_completed_successfully"
    assert not {"command", "entrypoint", "healthcheck"} & set(spec), "the image's CMD and HEALTHCHECK apply"

    env = environment(spec)
    expected = {
        "ACR_AWS_ENDPOINT_URL": "http://localstack:4566",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "ACR_AWS_REGION": "us-east-1",
        "ACR_CITY": "small",
        "ACR_SIM_SPEED": "30",
        **{name: value for name, value in COMPOSE_SECRETS.items() if not name.endswith("_SERVICE_KEY")},
        "ACR_TOKEN_PREVIOUS_SECRETS": "",
        "ACR_SERVICE_KEY": COMPOSE_SECRETS[f"ACR_{_module(service).upper()}_SERVICE_KEY"],
    }
    for other, port in SERVICE_PORTS.items():
        expected[f"ACR_{_module(other).upper()}_URL"] = f"http://{other}:{port}"
    for key, value in expected.items():
        assert env.get(key) == value, f"{service}: {key}={env.get(key)!r}, expected {value!r}"
    assert not SERVE_VARIABLES & set(env), "the image sets ACR_SERVICE, ACR_PORT and ACR_HOST"

    if service == "bff":
        assert [container_port(p) for p in spec["ports"]] == [(8000, 8000)]
        assert spec["ports"] == ["127.0.0.1:8000:8000"], "the BFF is published on this machine only"
    else:
        assert "ports" not in spec, f"{service} publishes a host port; only the bff should"

    if service in CITY_SERVICES:
        assert env.get("ACR_CITY_CACHE_DIR") == CITY_CACHE
        volumes = spec.get("volumes", [])
        assert any(str(v).split(":")[1:] == [CITY_CACHE] for v in volumes), f"{service}: no city cache volume"
        volume_name = next(str(v).split(":")[0] for v in volumes if str(v).endswith(CITY_CACHE))
        assert volume_name in (compose.get("volumes") or {}), f"{volume_name} is not a named volume"
    else:
        assert "ACR_CITY_CACHE_DIR" not in env and "volumes" not in spec


def test_compose_requires_the_secrets_and_publishes_the_bff_on_loopback_unless_told() -> None:
    """No secret has a default in compose (``acr-stack secrets --env-file .env`` writes random ones), so
    ``docker compose up`` stops and says what to run; ``ACR_BFF_BIND`` opens the BFF to the network."""
    for missing in COMPOSE_SECRETS:
        shell = {name: value for name, value in COMPOSE_SECRETS.items() if name != missing}
        with pytest.raises(
            ValueError, match=f"{missing} is missing: run acr-stack (secrets|keys) --env-file .env"
        ):
            load_compose(shell=shell)
    opened = load_compose(shell=COMPOSE_SECRETS | {"ACR_BFF_BIND": "0.0.0.0"})["services"]["bff"]
    assert opened["ports"] == ["0.0.0.0:8000:8000"]


def test_services_reached_by_their_dns_name_run_as_two_replicas() -> None:
    """Every service but the BFF (one container holds host port 8000) and payment (the simulated gateway's
    mode is process memory) runs twice; Docker's DNS spreads the calls over both."""
    services = load_compose()["services"]
    replicas = {name: services[name].get("deploy", {}).get("replicas", 1) for name in SERVICE_PORTS}
    assert replicas == {name: 1 if name in ("bff", "payment") else 2 for name in SERVICE_PORTS}
