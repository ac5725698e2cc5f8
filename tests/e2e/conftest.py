"""One real platform (every service and simulator as its own process) per session, in a
database and under a topic prefix of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from services.clients.identity_provider import IdentityProviderError, KeycloakAdmin
from tests.e2e.bank import Bank
from tests.e2e.harness import Platform
from tests.infra import Infra, in_thread, own_platform


@pytest.fixture(scope="package")
def infra(infra: Infra) -> Iterator[Infra]:
    """The session's servers, but a database (provisioned as deployed) and a topic prefix
    of this package's own: a platform from ``make up`` keeps its data, topics and
    consumer groups to itself."""
    with own_platform(infra, "e2e") as mine:
        yield mine


@pytest.fixture(scope="package")
def platform(infra: Infra) -> Iterator[Platform]:
    plat = Platform.build(infra, names=["clients", "loans", "mobile-money-sim", "payments",
                                        "smsc-sim", "notifications", "savings"])
    plat.migrate()
    yield plat
    plat.stop()
    in_thread(lambda: forget_partner_clients(infra))


async def forget_partner_clients(infra: Infra) -> None:
    """Delete the Keycloak clients the platform's partners got (onboarding, fuzzing): the
    realm is shared with a developer's platform, the database is dropped next."""
    conn = await asyncpg.connect(infra.service_url("clients"))
    try:
        rows = await conn.fetch("SELECT partner_id, keycloak_id FROM partners"
                                " WHERE keycloak_id IS NOT NULL")
    finally:
        await conn.close()
    if not rows or not infra.keycloak_admin_secret:
        return
    admin = KeycloakAdmin(infra.keycloak_url, "noria", "noria-admin",
                          infra.keycloak_admin_secret)
    try:
        for row in rows:
            try:
                await admin._send("DELETE", f"{admin.admin}/clients/{row['keycloak_id']}",
                                  ok=(204, 404))
            except IdentityProviderError:
                pass  # not ours to fail the suite over: the next run's takeover is safe
    finally:
        await admin.close()


@pytest.fixture(scope="package")
async def bank(platform: Platform) -> AsyncIterator[Bank]:
    if not all(m.child is not None and m.child.poll() is None for m in platform.procs.values()):
        await platform.start()
    b = Bank.connect(platform)
    yield b
    await b.http.aclose()
