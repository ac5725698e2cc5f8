"""Composition root of the clients service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.clients.api import clients as clients_api
from services.clients.api import credit_holds as credit_holds_api
from services.clients.api import groups as groups_api
from services.clients.api import offices as offices_api
from services.clients.api import partners as partners_api
from services.clients.api import transfers as transfers_api
from services.clients.consumers import consumer_spec
from services.clients.settings import ClientsSettings
from shared.app import ServiceSpec, create_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: ClientsSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(ClientsSettings)
    return ServiceSpec(
        name="clients",
        settings=settings,
        routers=[clients_api.router, groups_api.router, offices_api.router,
                 transfers_api.router, partners_api.router, credit_holds_api.router],
        consumers=[consumer_spec(settings.limit_policy())],
        background=[partners_api.close_identity_provider_at_stop],
        migrations_dir=MIGRATIONS,
        title="Noria clients service",
        description="Onboarding with KYC, solidarity groups, progressive credit limits and "
                    "the credit step of the disbursement saga.",
    )


def app() -> FastAPI:
    return create_app(build_spec())
