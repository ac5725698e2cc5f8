"""The architecture rules in pyproject.toml ([tool.importlinter]) catch what they forbid.

`make test` runs `lint-imports` on the real tree; here the same contracts run on a small
tree with the project's package names, first clean (kept), then with one forbidden
import each (broken): a rule that could never fail would pass both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")



def _services() -> list[str]:
    """The services the independence contract names, so a new service is in the tree."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [independence] = [c for c in contracts if c["type"] == "independence"]
    return [m.removeprefix("services.") for m in independence["modules"]]


SERVICES = _services()


def _tree(root: Path) -> None:
    (root / "shared").mkdir()
    (root / "shared" / "__init__.py").write_text("")
    (root / "shared" / "db.py").write_text("import asyncpg\n")
    (root / "services").mkdir()
    (root / "services" / "__init__.py").write_text("")
    for name in SERVICES:
        pkg = root / "services" / name
        (pkg / "domain").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "domain" / "__init__.py").write_text("from decimal import Decimal\n")
        (pkg / "api.py").write_text("import fastapi\nimport shared.db\n")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_tree_that_keeps_the_rules_passes(tmp_path: Path) -> None:
    _tree(tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "source", "contract"), [
    ("services/payments/domain/__init__.py", "import asyncpg\n",
     "A service's domain imports no framework, driver or broker"),
    ("services/loans/domain/__init__.py", "from fastapi import HTTPException\n",
     "A service's domain imports no framework, driver or broker"),
    ("services/loans/api.py", "import services.payments.domain\n",
     "No service imports another"),
    ("shared/db.py", "import services.clients.api\n",
     "The platform library imports no service"),
])
def test_a_forbidden_import_breaks_the_build(tmp_path: Path, module: str, source: str,
                                             contract: str) -> None:
    _tree(tmp_path)
    (tmp_path / module).write_text(source)
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    # (a service reaching another through shared breaks independence too)
    assert any(line.startswith(contract) for line in broken), result.stdout
