#!/usr/bin/env bash
# Install the Python toolchain and the locked dependencies into .venv.
# Idempotent: a second run with an unchanged uv.lock is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
    echo "[bootstrap] installing uv from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
fi
echo "[bootstrap] syncing .venv from uv.lock"
uv sync --frozen --quiet
