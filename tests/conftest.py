"""Session-wide fixtures: one PostgreSQL server and one Kafka broker for all tests.

Tests isolate themselves by schema (a fresh role + schema each), by topic (a fresh topic
name or prefix each, and so consumer groups of their own), never by starting their own
servers; the tests that start service processes get a database and a topic prefix of
their own (``tests.infra.own_platform``). So the suite runs beside a platform from
``make up``, and its parallel part in several pytest-xdist workers (each a process, each
with its own schemas and prefixes).

``--phase parallel`` keeps the tests that may run beside others (``make test`` runs them
with ``-n auto --dist loadfile``); ``--phase serial`` the rest, run after them in one
process: the end-to-end platform and the console's browser tests (processes on fixed,
offset ports) and the ``disruptive`` tests (they stop the shared broker or restart the
database, last of all).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from shared.kafka import ensure_topics
from shared.migrations import migrate
from tests.identity import issuer as start_test_issuer
from tests.infra import Infra, provision

# The session's token issuer starts before any service is built: its issuer and JWKS URL
# go into the environment that in-process services and child processes read.
start_test_issuer()

ORDER = ("tests/unit/", "tests/integration/", "tests/deploy/", "tests/console/", "tests/e2e/")
SERIAL = ("tests/e2e/", "tests/console/test_browser.py")
"""Start service processes on fixed ports: one run of them at a time."""


def _rank(item: pytest.Item) -> int:
    # Tests that stop the shared broker or database run last, so nothing else
    # sees the outage; the slow end-to-end platform runs after everything that
    # starts the services in-process (each suite's fixtures end with its package).
    if item.get_closest_marker("disruptive"):
        return len(ORDER)
    path = item.nodeid
    return next((i for i, prefix in enumerate(ORDER) if path.startswith(prefix)), 0)


def serial(item: pytest.Item) -> bool:
    return (item.get_closest_marker("disruptive") is not None
            or item.get_closest_marker("browser") is not None   # a platform on fixed ports
            or item.nodeid.startswith(SERIAL))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--phase", choices=("all", "parallel", "serial"), default="all",
        help="parallel: only the tests that may share the machine with other workers; "
             "serial: only the end-to-end, browser and disruptive ones (make test runs "
             "the first with -n auto, then the second)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)
    phase = config.getoption("--phase")
    if phase == "all":
        return
    keep = [item for item in items if serial(item) == (phase == "serial")]
    if len(keep) != len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if serial(item) != (phase == "serial")])
        items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "disruptive: stops shared infrastructure; runs last")


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    yield provision()


@pytest.fixture(scope="session")
async def admin_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infra.admin_url, min_size=1, max_size=5)
    assert pool is not None
    yield pool
    await pool.close()


@dataclass(frozen=True)
class IsolatedSchema:
    schema: str
    role: str
    dsn: str


SchemaFactory = Callable[..., Awaitable[IsolatedSchema]]
GRANT_LOCK = "SELECT pg_advisory_xact_lock(hashtext('noria-tests-grant'))"


@pytest.fixture(scope="session")
async def isolated_schema(infra: Infra, admin_pool: asyncpg.Pool) -> AsyncIterator[SchemaFactory]:
    """Create a fresh role + schema (platform migrations applied), like a service's."""
    created: list[IsolatedSchema] = []

    async def make(prefix: str = "t", service_dir: object = None) -> IsolatedSchema:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        async with admin_pool.acquire() as conn, conn.transaction():
            # One grant on the database at a time: pytest-xdist workers (and a running
            # platform's provisioning) update the same pg_database row ("tuple
            # concurrently updated" otherwise).
            await conn.execute(GRANT_LOCK)
            await conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{name}'")
            database = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {name}')
        async with admin_pool.acquire() as conn:
            await conn.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
            await conn.execute(f"ALTER ROLE {name} SET search_path = {name}")
        iso = IsolatedSchema(name, name, infra.url_for(name, name))
        await migrate(iso.dsn, name, service_dir)  # type: ignore[arg-type]
        created.append(iso)
        return iso

    yield make
    async with admin_pool.acquire() as conn:
        for iso in created:
            await conn.execute(f"DROP SCHEMA IF EXISTS {iso.schema} CASCADE")
            async with conn.transaction():  # revokes the grant: same row, same lock
                await conn.execute(GRANT_LOCK)
                await conn.execute(f"DROP OWNED BY {iso.role} CASCADE")
                await conn.execute(f"DROP ROLE IF EXISTS {iso.role}")


@pytest.fixture(scope="session")
async def fresh_topic(infra: Infra) -> Callable[[str], Awaitable[str]]:
    async def make(prefix: str = "t") -> str:
        topic = f"{prefix}.{uuid.uuid4().hex[:10]}.events"
        await ensure_topics(infra.kafka_bootstrap, [topic], partitions=4)
        return topic

    return make
