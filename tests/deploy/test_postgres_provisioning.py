"""The roles and schemas that docker compose and the dev cluster create are exactly
those scripts/infra/postgres.sh creates: one login role noria_<svc> per service,
search_path = its schema, no grants on the other schemas.

deploy/postgres/provision.psql must equal the SQL postgres.sh generates (its
``provisioning_sql local noria`` function, run with bash here); the dev overlay's
copies must equal the compose ones. A change to either side fails until both agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.deploy.common import ROOT, SERVICES, by_kind, find, rendered

PSQL = ROOT / "deploy/postgres/provision.psql"
KEYCLOAK_PSQL = ROOT / "deploy/postgres/keycloak.psql"
INIT = ROOT / "deploy/postgres/init/10-noria-provision.sh"
DEV_COPIES = {
    PSQL: ROOT / "deploy/k8s/overlays/dev/postgres/provision.psql",
    KEYCLOAK_PSQL: ROOT / "deploy/k8s/overlays/dev/postgres/keycloak.psql",
    INIT: ROOT / "deploy/k8s/overlays/dev/postgres/10-noria-provision.sh",
}
BASH = shutil.which("bash")


def generated_sql() -> str:
    assert BASH, "bash is needed to run scripts/infra/postgres.sh's generator"
    script = (
        'set -euo pipefail; . scripts/infra/common.sh; '
        'eval "$(sed -n "/^provisioning_sql() {/,/^}/p" scripts/infra/postgres.sh)"; '
        'declare -F provisioning_sql >/dev/null; provisioning_sql local noria')
    out = subprocess.run([BASH, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, f"postgres.sh's provisioning_sql failed: {out.stderr}"
    assert "CREATE SCHEMA" in out.stdout
    return out.stdout


def without_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "".join(lines)


def test_provision_sql_is_what_postgres_sh_generates() -> None:
    assert without_header(PSQL.read_text(encoding="utf-8")) == generated_sql(), (
        "deploy/postgres/provision.psql differs from scripts/infra/postgres.sh; regenerate "
        "it (see its header) and copy it to deploy/k8s/overlays/dev/postgres/")


def test_keycloak_sql_is_what_keycloak_sh_runs() -> None:
    """Keycloak's database and role: the same text in compose/the dev cluster as in
    scripts/infra/keycloak.sh (its keycloak_sql function)."""
    assert BASH
    script = (
        'set -euo pipefail; . scripts/infra/common.sh; KC_DB=keycloak; '
        'KC_DB_USER=noria_keycloak; '
        'eval "$(sed -n "/^keycloak_sql() {/,/^}/p" scripts/infra/keycloak.sh)"; '
        'declare -F keycloak_sql >/dev/null; keycloak_sql')
    out = subprocess.run([BASH, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "CREATE DATABASE keycloak OWNER noria_keycloak" in out.stdout
    assert without_header(KEYCLOAK_PSQL.read_text(encoding="utf-8")) == out.stdout, (
        "deploy/postgres/keycloak.psql differs from scripts/infra/keycloak.sh; regenerate it "
        "(see its header) and copy it to deploy/k8s/overlays/dev/postgres/")
    keycloak_sh = (ROOT / "scripts/infra/keycloak.sh").read_text(encoding="utf-8")
    assert "KC_DB=keycloak\n" in keycloak_sh and "KC_DB_USER=noria_keycloak\n" in keycloak_sh


def test_provision_sql_gives_each_service_its_role_and_schema() -> None:
    sql = PSQL.read_text(encoding="utf-8")
    for svc in SERVICES:
        assert f"ALTER ROLE noria_{svc} SET search_path = {svc};" in sql
        assert f"CREATE SCHEMA IF NOT EXISTS {svc} AUTHORIZATION noria_{svc};" in sql
        others = [f"noria_{o}" for o in SERVICES if o != svc]
        assert f"REVOKE ALL ON SCHEMA {svc} FROM PUBLIC, {', '.join(others)};" in sql


@pytest.mark.parametrize(("source", "copy"), list(DEV_COPIES.items()),
                         ids=lambda p: p.name)
def test_dev_overlay_copies_are_identical(source: object, copy: object) -> None:
    assert copy.read_bytes() == source.read_bytes(), (  # type: ignore[attr-defined]
        f"{copy} must be a copy of {source} (kustomize cannot read files outside the overlay)")


def test_init_script_passes_every_password_variable() -> None:
    used = set(re.findall(r":'(pw_[a-z_]+)'", PSQL.read_text(encoding="utf-8")
                          + KEYCLOAK_PSQL.read_text(encoding="utf-8")))
    script = INIT.read_text(encoding="utf-8")
    passed = set(re.findall(r"-v (pw_[a-z_]+)=", script))
    assert used == passed, f"provision.psql uses {sorted(used)}, the script sets {sorted(passed)}"
    for svc in SERVICES:
        assert f"NORIA_{svc.upper()}_DB_PASSWORD" in script
    assert BASH
    check = subprocess.run([BASH, "-n", str(INIT)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_dev_postgres_gets_the_passwords_the_services_use() -> None:
    resources = rendered("dev")
    pg = find(resources, "StatefulSet", "postgres")
    env = {e["name"]: e for e in pg["spec"]["template"]["spec"]["containers"][0]["env"]}
    secrets = {s["metadata"]["name"]: s for s in by_kind(resources, "Secret")}
    import base64

    def secret(name: str, key: str) -> str:
        return base64.b64decode(secrets[name]["data"][key]).decode()

    for svc in SERVICES:
        ref = env[f"NORIA_{svc.upper()}_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
        password = secret(ref["name"], ref["key"])
        url = secret(f"noria-{svc}-db", "database-url")
        assert url == f"postgresql://noria_{svc}:{password}@postgres:5432/noria", (
            f"the dev database URL of {svc} does not match the password postgres gets")
    mounts = {m["mountPath"] for m in pg["spec"]["template"]["spec"]["containers"][0][
        "volumeMounts"]}
    assert {"/docker-entrypoint-initdb.d", "/noria"} <= mounts
