"""Composition root of the payments service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.payments import state
from services.payments.api import (
    accounting,
    callbacks,
    held_payments,
    journals,
    ledger,
    listing,
    loan_servicing,
    payments,
    payouts,
    reconciliation,
    recoveries,
    refunds,
    settlements,
    statements,
)
from services.payments.consumers import consumer_specs
from services.payments.handlers.collections import wallet_confirmations
from services.payments.handlers.payee_lookups import payee_lookups
from services.payments.handlers.reconciliation import reconciliation_scheduler
from services.payments.jobs import accrual_workers, payout_wakeups, payout_worker
from services.payments.settings import PaymentsSettings
from shared.app import Runtime, ServiceSpec, create_app
from shared.clock import Clock, system_clock
from shared.settings import load_settings
from shared.singleton import singleton

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """Double-entry ledger, mobile-money payouts and collections (GSMA Mobile Money
API v1.2 conventions), refunds, write-offs and reconciliation with the providers."""


async def close_provider_sessions(runtime: Runtime) -> None:
    """At shutdown: the providers' keep-alive HTTP sessions."""
    await state.providers(runtime.state).close()


def build_spec(settings: PaymentsSettings | None = None,
               clock: Clock = system_clock) -> ServiceSpec:
    settings = settings or load_settings(PaymentsSettings)
    return ServiceSpec(
        name="payments",
        settings=settings,
        routers=[payments.router, callbacks.router, ledger.router, listing.router,
                 refunds.router, reconciliation.router, payouts.router,
                 settlements.router, accounting.router, journals.router,
                 statements.router, held_payments.router, loan_servicing.router,
                 recoveries.router],
        consumers=consumer_specs(settings),
        background=[payout_worker, payout_wakeups, wallet_confirmations, payee_lookups,
                    singleton(reconciliation_scheduler),
                    # a night's InterestAccrued batches, staged by the consumer
                    accrual_workers],
        on_stop=[close_provider_sessions],
        migrations_dir=MIGRATIONS,
        title="Noria payments service",
        description=DESCRIPTION,
        # the provider clients, the payout worker's wake-up, the callbacks in flight,
        # the clock payouts are judged by
        state=state.initial(settings, clock),
    )


def app() -> FastAPI:
    return create_app(build_spec())
