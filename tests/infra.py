"""Where the tests' PostgreSQL, Kafka and Keycloak come from.

In this order: URLs from the environment (``NORIA_DATABASE_URL`` as an admin URL
and ``NORIA_KAFKA_BOOTSTRAP``) → testcontainers where a Docker engine answers →
the project's own provisioning (``scripts/infra/infra.sh up``). Never a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
    keycloak_admin_secret: str = ""
    """The realm's ``noria-admin`` secret (what ``scripts/infra/infra.sh env`` exports as
    ``NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET``): the clients service creates partners'
    clients with it."""
    topic_prefix: str = ""
    """Prepended to every topic and consumer group of the service processes a test
    starts (:func:`own_platform`); empty: the real names, as a running platform uses."""

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

    @property
    def database(self) -> str:
        return urlsplit(self.admin_url).path.lstrip("/")

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
                     keycloak_url=_keycloak_url(), keycloak_admin_secret=_keycloak_secret())
    if _docker_engine() and not os.environ.get("NORIA_NO_TESTCONTAINERS"):
        return _testcontainers()
    if not os.environ.get("NORIA_TEST_INFRA_UP"):  # make test has just run it
        subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "up"], check=True)
    out = subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "env"], check=True,
                         capture_output=True, text=True).stdout
    env = _parse_env(out)
    return Infra(env["NORIA_ADMIN_DATABASE_URL"], env["NORIA_KAFKA_BOOTSTRAP"], "local",
                 managed_locally=True,
                 keycloak_url=env.get("NORIA_KEYCLOAK_URL") or _keycloak_url(),
                 keycloak_admin_secret=env.get("NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET")
                 or _keycloak_secret())


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
                 keycloak_url=_keycloak_url(), keycloak_admin_secret=_keycloak_secret())


def _keycloak_url() -> str:
    port = os.environ.get("NORIA_KEYCLOAK_PORT", "8180")
    return (os.environ.get("NORIA_KEYCLOAK_URL") or f"http://127.0.0.1:{port}").rstrip("/")


def _keycloak_secret() -> str:
    # the development realm's default (deploy/keycloak/noria-realm.json), as infra.sh env
    return os.environ.get("NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET") or "noria-admin-dev-secret"


def kafka_ctl(action: str) -> None:
    """Stop or start the locally managed broker (only for the outage tests)."""
    subprocess.run([str(ROOT / "scripts/infra/kafka.sh"), action], check=True)


# ------------------------------------------------------------ a platform's own world

OWN_DATABASE = "noria_test_"
STALE_AFTER_S = 6 * 3600


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def _psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True, timeout=120).stdout


def in_thread(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async function to completion on a thread of its own (from sync fixtures,
    without touching the event loop pytest-asyncio keeps for the session)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro_fn())
        except BaseException as exc:  # re-raised on the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="tests-infra")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (never the real ones)."""
    from aiokafka.admin import AIOKafkaAdminClient

    assert prefix, "an empty prefix would name every topic"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def _drop_stale(infra: Infra) -> None:
    """Databases a killed run left behind (their name carries their creation time)."""
    names = _psql(infra.admin_url, "SELECT datname FROM pg_database"
                  f" WHERE datname LIKE '{OWN_DATABASE}%'").split()
    for name in names:
        stamp = name.removeprefix(OWN_DATABASE).split("_")[1:2]
        if stamp and stamp[0].isdigit() and time.time() - int(stamp[0]) > STALE_AFTER_S:
            _psql(infra.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def own_platform(infra: Infra, label: str) -> Iterator[Infra]:
    """A database and a topic prefix of their own for service processes a test starts.

    The database is provisioned by ``scripts/infra/postgres.sh`` exactly like the real
    one (the services' roles, a schema each, the same grants), so the processes run as
    deployed, on the same servers as a developer's ``make up`` and never on its data,
    topics or consumer groups. Dropped afterwards, with the prefixed topics.
    """
    _drop_stale(infra)
    tag = uuid.uuid4().hex[:6]
    database = f"{OWN_DATABASE}{label}_{int(time.time())}_{tag}"
    _psql(infra.admin_url, f'CREATE DATABASE "{database}" TEMPLATE template0')
    mine = dataclasses.replace(infra, admin_url=_with_database(infra.admin_url, database),
                               topic_prefix=f"{label}{tag}.")
    try:
        subprocess.run([str(ROOT / "scripts/infra/postgres.sh"), "up"], check=True,
                       capture_output=True, timeout=120,
                       env={**os.environ, "NORIA_DATABASE_URL": mine.admin_url})
        yield mine
    finally:
        with contextlib.suppress(Exception):
            in_thread(lambda: delete_topics(infra.kafka_bootstrap, mine.topic_prefix))
        _psql(infra.admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
