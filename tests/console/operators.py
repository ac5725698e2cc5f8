"""Helpers for the console's page tests that need a second operator (maker-checker) or
the savings service, which the shared fixtures do not start."""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import AsyncIterator

import httpx

from console.app import create_app
from tests.console.conftest import console_settings, operator_token, sign_in
from tests.console.fake_platform import Served, State, build_service

_SAVINGS: dict[int, Served] = {}


def savings_url(state: State) -> str:
    """The fake savings service over ``state`` (started once per state, stopped at exit)."""
    served = _SAVINGS.get(id(state))
    if served is None:
        served = Served(build_service("savings", state))
        served.start()
        atexit.register(served.stop)
        _SAVINGS[id(state)] = served
    return served.url


@contextlib.asynccontextmanager
async def console_as(fake_services: dict[str, str], state: State, sub: str
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of the console (cookie jar), signed in as operator ``sub``, with every
    service including savings."""
    settings = console_settings(fake_services).model_copy(
        update={"savings_url": savings_url(state)})
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        resp = await sign_in(client, operator_token(sub))
        assert resp.status_code == 303, resp.text
        yield client
