"""deploy/k8s rendered by the real ``kubectl kustomize``, and helpers over its output.

scripts/bootstrap.sh installs kubectl where it is missing (into ``.venv/bin``), so the
deploy tests always render with the kustomize that a cluster operator runs: a test
fails, never skips, when kubectl cannot be found or cannot render an overlay.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
VENV_KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
# Our kustomizations use `labels` and `patches`: kustomize v5 (kubectl >= 1.27) at least.
MIN_KUSTOMIZE = (5, 0)


class KubectlMissing(AssertionError):
    """No kubectl with a recent enough kustomize: run scripts/bootstrap.sh."""


@cache
def kubectl() -> str:
    """The kubectl to render with: the one on PATH, else the one the bootstrap installed."""
    for candidate in (shutil.which("kubectl"), str(VENV_KUBECTL)):
        if candidate and Path(candidate).is_file() and \
                kustomize_version(candidate) >= MIN_KUSTOMIZE:
            return candidate
    raise KubectlMissing(
        "kubectl embedding kustomize v5 was found neither on PATH nor in .venv/bin: "
        "run scripts/bootstrap.sh (make bootstrap), which installs it")


def kustomize_version(binary: str) -> tuple[int, int]:
    """(major, minor) of the kustomize embedded in ``binary``; (0, 0) if it has none."""
    try:
        out = subprocess.run([binary, "version", "--client"], capture_output=True,
                             text=True, timeout=60, check=False).stdout
    except OSError:
        return (0, 0)
    match = re.search(r"^Kustomize Version: v(\d+)\.(\d+)", out, re.MULTILINE)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def render(directory: Path) -> list[Resource]:
    """``kubectl kustomize <directory>``, parsed."""
    out = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, f"kubectl kustomize {directory} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def resource_id(res: Resource) -> tuple[str, str, str, str]:
    meta = res.get("metadata", {})
    return (res.get("apiVersion", ""), res["kind"], meta.get("namespace", ""), meta["name"])


def pod_spec(res: Resource) -> dict[str, Any] | None:
    """The pod spec of a workload resource, or None."""
    spec = res.get("spec", {})
    if res["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return spec.get("template", {}).get("spec")
    if res["kind"] == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if res["kind"] == "Pod":
        return spec
    return None


def containers(res: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(res) or {}
    return [*spec.get("initContainers", []), *spec.get("containers", [])]
