"""Composition root of the loans service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.loans.settings import LoansSettings
from shared.app import ServiceSpec, create_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: LoansSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(LoansSettings)
    return ServiceSpec(
        name="loans",
        settings=settings,
        routers=[],
        consumers=[],
        migrations_dir=MIGRATIONS,
        title="Noria loans service",
    )


def app() -> FastAPI:
    return create_app(build_spec())
