"""Composition root of the payments service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.payments.settings import PaymentsSettings
from shared.app import ServiceSpec, create_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: PaymentsSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(PaymentsSettings)
    return ServiceSpec(
        name="payments",
        settings=settings,
        routers=[],
        consumers=[],
        migrations_dir=MIGRATIONS,
        title="Noria payments service",
    )


def app() -> FastAPI:
    return create_app(build_spec())
