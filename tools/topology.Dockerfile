# syntax=docker/dockerfile:1
# Build from the repository root (the uv workspace), e.g.:
#   docker build -f tools/topology.Dockerfile .
# docker-compose.yml at the root builds and runs every image.

# ---------------------------------------------------------------- builder
FROM python:3.11.14-slim-bookworm AS builder

# uv itself, pinned; the Python interpreter is the base image's (same as the runtime stage).
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Every workspace member's pyproject.toml (uv resolves the whole workspace) + the lock:
# the third-party dependency layer below is rebuilt only when one of these changes.
COPY pyproject.toml uv.lock ./
COPY libs/acr/pyproject.toml libs/acr/pyproject.toml
COPY libs/acr-city/pyproject.toml libs/acr-city/pyproject.toml
COPY bff/pyproject.toml bff/pyproject.toml
COPY ride-manager/pyproject.toml ride-manager/pyproject.toml
COPY address-finder/pyproject.toml address-finder/pyproject.toml
COPY car-dispatcher/pyproject.toml car-dispatcher/pyproject.toml
COPY route-monitor/pyproject.toml route-monitor/pyproject.toml
COPY payment/pyproject.toml payment/pyproject.toml
COPY reward/pyproject.toml reward/pyproject.toml
COPY car-simulator/pyproject.toml car-simulator/pyproject.toml

RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --all-packages

# acr-topology discovers every service's slice through the `acr.topology` entry points,
# so this image installs ALL workspace packages.
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
    uv sync --frozen --no-dev --no-editable --all-packages

# ---------------------------------------------------------------- runtime
FROM python:3.11.14-slim-bookworm AS runtime

ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 acr \
    && useradd --system --no-log-init --uid 10001 --gid acr --create-home --home-dir /home/acr acr

COPY --from=builder /app/.venv /app/.venv

WORKDIR /home/acr
USER 10001:10001

# One-shot job: create (idempotently) the buses, queues, topics, streams and tables, then exit.
CMD ["acr-topology", "apply"]
