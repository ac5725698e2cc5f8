"""The clients service's Keycloak admin client is closed when the service stops."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from services.clients.api.partners import IDP_STATE, close_identity_provider_at_stop
from services.clients.bootstrap import build_spec
from services.clients.identity_provider import KeycloakAdmin
from services.clients.settings import ClientsSettings
from shared.app import Runtime


def runtime_with(state: dict[str, Any]) -> Runtime:
    return cast(Runtime, SimpleNamespace(state=state))


async def test_stopping_the_service_closes_the_admin_client_a_partner_request_made() -> None:
    admin = KeycloakAdmin("http://keycloak.invalid", "noria", "noria-admin", "secret")
    rt = runtime_with({IDP_STATE: admin})
    job = asyncio.create_task(close_identity_provider_at_stop(rt))
    await asyncio.sleep(0)  # the job waits for the shutdown
    assert not admin._http.is_closed
    job.cancel()  # what stop_runtime does to every background job
    await asyncio.gather(job, return_exceptions=True)
    assert admin._http.is_closed
    assert IDP_STATE not in rt.state


async def test_stopping_a_service_that_never_called_keycloak_is_quiet() -> None:
    rt = runtime_with({})
    job = asyncio.create_task(close_identity_provider_at_stop(rt))
    await asyncio.sleep(0)
    job.cancel()
    (result,) = await asyncio.gather(job, return_exceptions=True)
    assert isinstance(result, asyncio.CancelledError)


def test_the_service_runs_the_closing_job() -> None:
    spec = build_spec(ClientsSettings(database_url="postgresql://unused/db"))
    assert close_identity_provider_at_stop in spec.background
