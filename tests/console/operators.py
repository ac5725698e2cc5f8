"""Helpers for the console's page tests that need a second operator (maker-checker)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from console.app import create_app
from tests.console.conftest import console_settings, operator_token, sign_in
from tests.console.fake_platform import State


@contextlib.asynccontextmanager
async def console_as(fake_services: dict[str, str], state: State, sub: str
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of the console (cookie jar), signed in as operator ``sub``; ``state`` is
    what ``fake_services`` serve."""
    app = create_app(console_settings(fake_services))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        resp = await sign_in(client, operator_token(sub))
        assert resp.status_code == 303, resp.text
        yield client
