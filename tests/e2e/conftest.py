"""One real platform (every service and simulator as its own process) per session, in a
database and under a topic prefix of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.e2e.bank import Bank
from tests.e2e.harness import Platform
from tests.infra import Infra, own_platform


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


@pytest.fixture(scope="package")
async def bank(platform: Platform) -> AsyncIterator[Bank]:
    if not all(m.child is not None and m.child.poll() is None for m in platform.procs.values()):
        await platform.start()
    b = Bank.connect(platform)
    yield b
    await b.http.aclose()
