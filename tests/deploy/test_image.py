"""The image installs only the locked non-dev dependencies (``uv sync --frozen
--no-dev``): every third-party package the code in the image imports must be among
them, or a process would crash at start-up in Docker and Kubernetes while every
test passed in the development virtualenv (which has the dev packages too).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from tests.deploy.common import DOCKERIGNORE, ROOT

FIRST_PARTY = {"shared", "services", "simulators", "console", "tests", "scripts"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_packages() -> list[Path]:
    rules = [r.strip() for r in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    folders = [r[1:].rstrip("/") for r in rules if r.startswith("!") and r.endswith("/")]
    return [ROOT / f for f in folders if (ROOT / f).is_dir()]


def locked_runtime_distributions() -> set[str]:
    """The closure of the project's non-dev dependencies in uv.lock, with extras."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    packages = {normalise(p["name"]): p for p in lock["package"]}
    project = normalise(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"])
    visited: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [
        (normalise(d["name"]), extra)
        for d in packages[project].get("dependencies", [])
        for extra in ("", *d.get("extra", []))]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in visited:
            continue
        visited.add((name, extra))
        package = packages[name]
        deps = (package.get("optional-dependencies", {}).get(extra, []) if extra
                else package.get("dependencies", []))
        todo += [(normalise(d["name"]), e) for d in deps for e in ("", *d.get("extra", []))]
    seen = {name for name, _ in visited}
    return seen


def optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: ... except ImportError`` or ``if TYPE_CHECKING:``."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            for handler in parent.handlers:
                names = ast.unparse(handler.type) if handler.type else ""
                if "ImportError" in names or "ModuleNotFoundError" in names:
                    return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        node = parent
    return False


def third_party_imports() -> dict[str, list[str]]:
    """top-level module -> files that import it unconditionally."""
    found: dict[str, list[str]] = {}
    for folder in image_packages():
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            parents = {child: node for node in ast.walk(tree)
                       for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                if optional(node, parents):
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in FIRST_PARTY or top in sys.stdlib_module_names:
                        continue
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_image_has_every_package_the_code_imports() -> None:
    runtime = locked_runtime_distributions()
    providers = metadata.packages_distributions()
    missing = []
    for module, files in sorted(third_party_imports().items()):
        dists = {normalise(d) for d in providers.get(module, [])}
        if not dists:
            missing.append(f"{module} (imported by {files[0]}): no installed distribution "
                           "provides it")
        elif not dists & runtime:
            missing.append(f"{module} (imported by {files[0]}) comes from {sorted(dists)}, "
                           "which is not a runtime dependency: `uv add` it (not --dev)")
    assert not missing, "\n".join(missing)


def test_the_runtime_closure_is_not_empty_and_excludes_test_tools() -> None:
    runtime = locked_runtime_distributions()
    assert {"fastapi", "aiokafka", "asyncpg", "uvicorn", "uvloop"} <= runtime
    assert not {"pytest", "hypothesis", "mypy", "ruff"} & runtime
