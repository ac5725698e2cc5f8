"""Console fixtures: the console in-process, the services as small real HTTP servers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from console.app import create_app
from console.session import CSRF_COOKIE
from console.settings import ConsoleSettings
from shared.auth import ROLE_SCOPES
from tests.console.fake_platform import Served, State, build_service
from tests.identity import issuer, mint_token

SERVICES = ("clients", "loans", "payments", "notifications", "savings")
"""Every service the console calls has a fake: none is left at its default address
(127.0.0.1:8105 is savings in a developer's ``make up``, which refuses the test issuer's
tokens, and the console then sends the operator to sign in)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the console in headless Chromium against the platform")


def operator_token(sub: str | None = None, ttl_s: int = 3600) -> str:
    return mint_token(sub=sub or f"op-{uuid.uuid4().hex[:8]}",
                      scopes=ROLE_SCOPES["operator"], ttl_s=ttl_s)


CROWD = 150
"""Applications from other operators already waiting: no console test sees an empty world."""


def crowd(state: State, n: int, principal: str = "2500.00") -> list[str]:
    """``n`` submitted applications from as many clients, each with its schedule."""
    ids = []
    for _ in range(n):
        loan_id = f"L-{uuid.uuid4().hex[:12]}"
        client_id = f"C-{uuid.uuid4().hex[:12]}"
        state.clients[client_id] = {"id": client_id, "full_name": f"Client {client_id}",
                                    "phone": "+212600000000", "kyc_status": "verified"}
        state.loans[loan_id] = {
            "id": loan_id, "client_id": client_id, "product_id": "P-weekly",
            "status": "submitted", "principal": principal, "term": 4,
            "submitted_by": "agent-crowd", "decided_by": None,
            "outstanding": {"principal": principal, "interest": "0.00", "fees": "0.00",
                            "penalties": "0.00", "total": principal},
            "days_in_arrears": 0, "next_due": None}
        state.schedules[loan_id] = [
            {"number": k, "due_date": f"2026-12-0{k}", "principal": "625.00",
             "interest": "10.00", "fees": "0.00", "penalties": "0.00", "total": "635.00",
             "paid": "0.00", "status": "pending"} for k in range(1, 5)]
        ids.append(loan_id)
    return ids


@pytest.fixture(scope="session")
def fake_state() -> State:
    state = State()
    crowd(state, CROWD)
    return state


@pytest.fixture(scope="session")
def fake_services(fake_state: State) -> Iterator[dict[str, str]]:
    served = {name: Served(build_service(name, fake_state)) for name in SERVICES}
    for s in served.values():
        s.start()
    yield {name: s.url for name, s in served.items()}
    for s in served.values():
        s.stop()


class IsolatedConsoleSettings(ConsoleSettings):
    """The console's settings from what the test passes only: no ``NORIA_CONSOLE_*`` of
    the environment (a developer's shell, a platform's) changes what the tests see."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def console_settings(urls: dict[str, str]) -> ConsoleSettings:
    test_issuer = issuer()
    return IsolatedConsoleSettings(
        clients_url=urls["clients"], loans_url=urls["loans"], payments_url=urls["payments"],
        notifications_url=urls["notifications"], savings_url=urls["savings"],
        providers="sim", oidc_issuer=test_issuer.issuer, oidc_jwks_url=test_issuer.jwks_url,
        oidc_extra_issuers="",
        dev_token_login=True)  # these tests paste test-issuer tokens


@pytest.fixture
async def browser_client(fake_services: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a cookie jar, talking to the console in-process."""
    app = create_app(console_settings(fake_services))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        yield client


async def sign_in(client: httpx.AsyncClient, token: str, next_: str = "/") -> httpx.Response:
    page = await client.get("/login")
    csrf = csrf_from(page.text)
    return await client.post("/login", data={"token": token, "csrf_token": csrf,
                                             "next": next_})


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries no CSRF field"
    return found.group(1)


@pytest.fixture
async def signed_in(browser_client: httpx.AsyncClient) -> httpx.AsyncClient:
    resp = await sign_in(browser_client, operator_token("amina"))
    assert resp.status_code == 303
    assert browser_client.cookies.get(CSRF_COOKIE)
    return browser_client


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed on a fresh machine (idempotent), for every browser
    module: whichever of them runs first installs it."""
    from tests.console.test_browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env,
                       capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env,
                       capture_output=True)
    assert shutil.which(CHROMIUM), "chromium could not be installed"
    return CHROMIUM
