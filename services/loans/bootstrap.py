"""Composition root of the loans service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.loans.api import (
    collection_sheets,
    compulsory_savings,
    group_loans,
    loans,
    operations,
    products,
)
from services.loans.consumers import consumer_specs
from services.loans.handlers.jobs import cob_scheduler, saga_sweeper
from services.loans.settings import LoansSettings
from shared.app import ServiceSpec, create_app
from shared.settings import load_settings
from shared.singleton import singleton

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: LoansSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(LoansSettings)
    return ServiceSpec(
        name="loans",
        settings=settings,
        routers=[products.router, compulsory_savings.router, group_loans.router, loans.router,
                 operations.router, collection_sheets.router],
        consumers=consumer_specs(settings),
        background=[singleton(saga_sweeper), singleton(cob_scheduler)],
        migrations_dir=MIGRATIONS,
        title="Noria loans service",
        description="Products, applications, the disbursement saga, repayments, "
                    "close of business and portfolio at risk.",
    )


def app() -> FastAPI:
    return create_app(build_spec())
