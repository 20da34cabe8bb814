# syntax=docker/dockerfile:1
# The one Dockerfile of ACR. The build context is the repository root (the uv workspace).
#
#   one service:   docker build --build-arg SERVICE=payment --build-arg PORT=8005 -t acr/payment .
#   the topology:  docker build --target topology -t acr/topology .
#
# SERVICE is a workspace member folder (bff, ride-manager, ...) and PORT its port (acr.settings.SERVICE_PORTS).
# docker-compose.yml builds every image from this file; see docs/docker.md.

# ---------------------------------------------------------------- workspace: uv + the lock
FROM python:3.11.14-slim-bookworm AS workspace

# uv itself, pinned; the Python interpreter is the base image's (the same as the runtime's).
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Every workspace member's pyproject.toml (uv resolves the whole workspace) + the lock:
# the third-party dependency layers below are rebuilt only when one of these changes.
COPY pyproject.toml uv.lock ./
COPY libs/acr/pyproject.toml libs/acr/pyproject.toml
COPY libs/acr-city/pyproject.toml libs/acr-city/pyproject.toml
COPY libs/acr-stack/pyproject.toml libs/acr-stack/pyproject.toml
COPY libs/acr-testkit/pyproject.toml libs/acr-testkit/pyproject.toml
COPY bff/pyproject.toml bff/pyproject.toml
COPY ride-manager/pyproject.toml ride-manager/pyproject.toml
COPY address-finder/pyproject.toml address-finder/pyproject.toml
COPY car-dispatcher/pyproject.toml car-dispatcher/pyproject.toml
COPY route-monitor/pyproject.toml route-monitor/pyproject.toml
COPY payment/pyproject.toml payment/pyproject.toml
COPY reward/pyproject.toml reward/pyproject.toml
COPY car-simulator/pyproject.toml car-simulator/pyproject.toml

# ---------------------------------------------------------------- one service's venv
FROM workspace AS service-build
ARG SERVICE
ARG PORT
RUN if [ -z "${SERVICE}" ] || [ ! -f "${SERVICE}/pyproject.toml" ] || [ -z "${PORT}" ]; then \
        echo "build with --build-arg SERVICE=<workspace member folder> --build-arg PORT=<its port>" >&2; \
        exit 1; \
    fi

# Third-party dependencies only: cached until the lock or a pyproject.toml changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package "acr-${SERVICE}"

# The shared libraries and this service, installed as wheels (--no-editable): the venv is
# self-contained and the runtime needs no source tree.
COPY libs/ libs/
COPY ${SERVICE}/src ${SERVICE}/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "acr-${SERVICE}"

# ---------------------------------------------------------------- the topology job's venv
# acr-topology finds each service's slice through the `acr.topology` entry points, so this
# venv holds every service package (but not the dev-only acr-testkit: no --all-packages).
FROM workspace AS topology-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace \
        --package acr-bff --package acr-ride-manager --package acr-address-finder \
        --package acr-car-dispatcher --package acr-route-monitor --package acr-payment \
        --package acr-reward --package acr-car-simulator
COPY libs/ libs/
COPY bff/src bff/src
COPY ride-manager/src ride-manager/src
COPY address-finder/src address-finder/src
COPY car-dispatcher/src car-dispatcher/src
COPY route-monitor/src route-monitor/src
COPY payment/src payment/src
COPY reward/src reward/src
COPY car-simulator/src car-simulator/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
        --package acr-bff --package acr-ride-manager --package acr-address-finder \
        --package acr-car-dispatcher --package acr-route-monitor --package acr-payment \
        --package acr-reward --package acr-car-simulator

# ---------------------------------------------------------------- runtime: shared by both images
FROM python:3.11.14-slim-bookworm AS runtime

ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A non-root user, and the city cache folder (a volume in docker-compose.yml).
RUN groupadd --system --gid 10001 acr \
    && useradd --system --no-log-init --uid 10001 --gid acr --create-home --home-dir /home/acr acr \
    && mkdir -p /home/acr/.cache/acr-city \
    && chown -R acr:acr /home/acr/.cache

WORKDIR /home/acr

# ---------------------------------------------------------------- target: topology (one-shot job)
FROM runtime AS topology
COPY --from=topology-build /app/.venv /app/.venv
USER 10001:10001
# Create (idempotently) the buses, queues, topics, streams and tables, then exit.
CMD ["acr-topology", "apply"]

# ---------------------------------------------------------------- target: service (the default)
FROM runtime AS service
ARG SERVICE
ARG PORT
# acr.serve reads which service to run, and where, from these.
ENV ACR_SERVICE=${SERVICE} \
    ACR_PORT=${PORT} \
    ACR_HOST=0.0.0.0
COPY --from=service-build /app/.venv /app/.venv
USER 10001:10001
EXPOSE ${PORT}

# `--probe` exits 0 when the service's /healthz on ACR_PORT answers 200.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=5 \
    CMD ["python", "-m", "acr.serve", "--probe"]

# uvicorn serving the service's app factory (<module>.main:create_app) on ACR_HOST:ACR_PORT.
CMD ["python", "-m", "acr.serve"]
