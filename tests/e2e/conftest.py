"""One real platform (every service and simulator as its own process) per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.e2e.bank import Bank
from tests.e2e.harness import Platform
from tests.infra import Infra


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
