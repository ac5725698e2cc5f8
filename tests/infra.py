"""Where the tests' PostgreSQL, Kafka and Keycloak come from.

In this order: URLs from the environment (``NORIA_DATABASE_URL`` as an admin URL
and ``NORIA_KAFKA_BOOTSTRAP``) → testcontainers where a Docker engine answers →
the project's own provisioning (``scripts/infra/infra.sh up``). Never a fake.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("clients", "loans", "payments", "notifications", "savings")


@dataclass(frozen=True)
class Infra:
    admin_url: str
    kafka_bootstrap: str
    source: str
    managed_locally: bool
    keycloak_url: str = "http://127.0.0.1:8180"
    """The identity provider scripts/infra/keycloak.sh started (or NORIA_KEYCLOAK_URL)."""

    @property
    def keycloak_issuer(self) -> str:
        return f"{self.keycloak_url.rstrip('/')}/realms/noria"

    def service_url(self, service: str) -> str:
        parts = urlsplit(self.admin_url)
        host = parts.hostname or "127.0.0.1"
        port = f":{parts.port}" if parts.port else ""
        user = f"noria_{service}"
        password = os.environ.get(f"NORIA_{service.upper()}_DB_PASSWORD", user)
        return urlunsplit((parts.scheme, f"{user}:{password}@{host}{port}", parts.path, "", ""))

    def url_for(self, user: str, password: str) -> str:
        parts = urlsplit(self.admin_url)
        host = parts.hostname or "127.0.0.1"
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, f"{user}:{password}@{host}{port}", parts.path, "", ""))


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip().strip("'\"")
    return env


def provision() -> Infra:
    db_url = os.environ.get("NORIA_DATABASE_URL")
    bootstrap = os.environ.get("NORIA_KAFKA_BOOTSTRAP")
    if db_url and bootstrap:
        # Still run the provisioning SQL (roles, schemas) against the given server.
        subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "up"], check=True)
        return Infra(db_url, bootstrap, "environment", managed_locally=False,
                     keycloak_url=_keycloak_url())
    if _docker_engine() and not os.environ.get("NORIA_NO_TESTCONTAINERS"):
        return _testcontainers()
    subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "up"], check=True)
    out = subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "env"], check=True,
                         capture_output=True, text=True).stdout
    env = _parse_env(out)
    return Infra(env["NORIA_ADMIN_DATABASE_URL"], env["NORIA_KAFKA_BOOTSTRAP"], "local",
                 managed_locally=True,
                 keycloak_url=env.get("NORIA_KEYCLOAK_URL") or _keycloak_url())


def _testcontainers() -> Infra:  # pragma: no cover - needs a Docker engine
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    pg = PostgresContainer("postgres:16", username="noria_admin", password="noria_admin",
                           dbname="noria").start()
    kafka = (KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
             .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
             .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1").start())
    admin_url = pg.get_connection_url().replace("postgresql+psycopg2", "postgresql")
    env = {**os.environ, "NORIA_DATABASE_URL": admin_url,
           "NORIA_KAFKA_BOOTSTRAP": kafka.get_bootstrap_server()}
    subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "up"], check=True, env=env)
    return Infra(admin_url, kafka.get_bootstrap_server(), "testcontainers", managed_locally=False,
                 keycloak_url=_keycloak_url())


def _keycloak_url() -> str:
    port = os.environ.get("NORIA_KEYCLOAK_PORT", "8180")
    return (os.environ.get("NORIA_KEYCLOAK_URL") or f"http://127.0.0.1:{port}").rstrip("/")


def kafka_ctl(action: str) -> None:
    """Stop or start the locally managed broker (only for the outage tests)."""
    subprocess.run([str(ROOT / "scripts/infra/kafka.sh"), action], check=True)
