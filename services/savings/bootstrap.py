"""Composition root of the savings service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.savings.api import accounts, arrears_cover, cob, products
from services.savings.consumers import consumer_spec
from services.savings.jobs import cob_scheduler, ensure_savings_topics, withdrawals_gauge
from services.savings.settings import SavingsSettings
from shared.app import ServiceSpec, create_app
from shared.clock import Clock, system_clock
from shared.settings import load_settings
from shared.singleton import singleton

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: SavingsSettings | None = None, *, clock: Clock = system_clock
               ) -> ServiceSpec:
    settings = settings or load_settings(SavingsSettings)
    return ServiceSpec(
        name="savings",
        settings=settings,
        routers=[products.router, accounts.router, arrears_cover.router, cob.router],
        consumers=[consumer_spec(clock)],
        background=[ensure_savings_topics, withdrawals_gauge, singleton(cob_scheduler)],
        migrations_dir=MIGRATIONS,
        title="Noria savings service",
        description="Savings products and accounts, deposits, the withdrawal saga, "
                    "holds, interest accrual and posting, and close of business.",
        state={"clock": clock},
    )


def app() -> FastAPI:
    return create_app(build_spec())
