"""Composition root of the payments service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.payments import worker
from services.payments.api_callbacks import callbacks_router
from services.payments.api_ledger import ledger_router
from services.payments.api_listing import listing_router
from services.payments.api_payments import payments_router
from services.payments.api_refunds import refunds_router
from services.payments.consumers import consumer_specs
from services.payments.deps import Deps
from services.payments.settings import PaymentsSettings
from shared.app import Runtime, ServiceSpec, create_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """Double-entry ledger, mobile-money payouts and collections (GSMA Mobile Money
API v1.2 conventions), refunds, write-offs and reconciliation with the providers."""


def build_spec(settings: PaymentsSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(PaymentsSettings)
    deps = Deps(settings)

    async def payout_worker(runtime: Runtime) -> None:
        await worker.run(deps, runtime.pool)

    async def payout_wakeups(runtime: Runtime) -> None:
        await worker.listen_for_payouts(settings.database_url, runtime.schema,
                                        deps.payout_wakeup)

    return ServiceSpec(
        name="payments",
        settings=settings,
        routers=[payments_router(deps), callbacks_router(deps), ledger_router(deps),
                 listing_router(deps), refunds_router(deps)],
        consumers=consumer_specs(deps),
        background=[payout_worker, payout_wakeups],
        migrations_dir=MIGRATIONS,
        title="Noria payments service",
        description=DESCRIPTION,
    )


def app() -> FastAPI:
    return create_app(build_spec())
