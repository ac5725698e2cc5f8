"""Composition root of the clients service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.clients.settings import ClientsSettings
from shared.app import ServiceSpec, create_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: ClientsSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(ClientsSettings)
    return ServiceSpec(
        name="clients",
        settings=settings,
        routers=[],
        consumers=[],
        migrations_dir=MIGRATIONS,
        title="Noria clients service",
    )


def app() -> FastAPI:
    return create_app(build_spec())
