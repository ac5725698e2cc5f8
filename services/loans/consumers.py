"""The loans consumer group: clients' events (projection + saga replies), payments' and
savings' (the compulsory savings step's replies)."""

from __future__ import annotations

from services.loans.handlers.events import PROJECTION_HANDLERS, saga_handlers
from services.loans.handlers.group_loans import (
    on_payout_recovery_recorded,
    on_repayment_received,
)
from services.loans.handlers.org_events import ORG_HANDLERS
from services.loans.settings import LoansSettings
from shared.app import ConsumerSpec
from shared.contracts import clients, payments, savings


def consumer_specs(settings: LoansSettings) -> list[ConsumerSpec]:
    return [ConsumerSpec(
        group="loans",
        topics=[clients.EVENTS, payments.EVENTS, savings.EVENTS],
        handlers={
            **PROJECTION_HANDLERS,
            **ORG_HANDLERS,
            **saga_handlers(settings.saga_policy()),
            "RepaymentReceived": on_repayment_received,
            "PayoutRecoveryRecorded": on_payout_recovery_recorded,
        },
    )]
