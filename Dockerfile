# syntax=docker/dockerfile:1.7
#
# One image for every Noria process; the command picks the role:
#   python -m services.<name> serve      clients | loans | payments | notifications
#   python -m services.<name> migrate    apply that service's migrations, then exit
#   python -m simulators.mobile_money    mobile-money provider simulator (HTTP 8190)
#   python -m simulators.smsc            SMSC simulator (SMPP 2775, HTTP 8191)
#   python -m console                    operations console (HTTP 8100)
#
# Build:  docker build -t noria:dev .
# The runtime stage has no compiler, no uv and no package manager cache; it runs as
# uid/gid 10001. Health checks need nothing extra: python's urllib is in the image
# (see docker-compose.yml) and Kubernetes probes the HTTP endpoints itself.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

# ---------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Only the lock decides what is installed: `--frozen` fails instead of re-resolving.
# The project itself is not installed; the runtime runs the sources from /app.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --frozen --no-dev --no-install-project
# .dockerignore lets through only the code the processes run (shared, services,
# simulators, console); byte-compile it here so the runtime filesystem can be read-only.
COPY . /app
RUN python -m compileall -q /app

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="noria" \
      org.opencontainers.image.description="Noria microfinance platform: services, simulators, console"
RUN groupadd --system --gid 10001 noria \
 && useradd --system --uid 10001 --gid noria --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin noria
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8100 8101 8102 8103 8104 8190 8191 2775
# Every deployment names its command; without one the image says how to use it.
CMD ["python", "-c", "print('noria image: run python -m services.<name> serve|migrate, python -m simulators.<name> or python -m console')"]
