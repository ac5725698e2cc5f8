"""The payments consumer group: the saga's commands and the loans service's answers."""

from __future__ import annotations

from services.payments.handlers.accounting import on_interest_accrued, on_loan_submitted
from services.payments.handlers.payouts import disburse_loan_handler
from services.payments.handlers.repayments import repayment_handlers
from services.payments.settings import PaymentsSettings
from shared.app import ConsumerSpec
from shared.contracts import loans, payments


def consumer_specs(settings: PaymentsSettings) -> list[ConsumerSpec]:
    return [ConsumerSpec(
        group="payments",
        topics=[payments.COMMANDS, loans.EVENTS],
        handlers={
            "DisburseLoan": disburse_loan_handler(settings),
            **repayment_handlers(settings),
            "InterestAccrued": on_interest_accrued,
            "LoanSubmitted": on_loan_submitted,
        },
    )]
