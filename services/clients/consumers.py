"""The clients consumer group: saga commands and the loans that carry exposure."""

from __future__ import annotations

from services.clients.domain.credit import LimitPolicy
from services.clients.handlers import credit
from shared.app import ConsumerSpec
from shared.contracts.clients import COMMANDS
from shared.contracts.loans import EVENTS as LOAN_EVENTS


def consumer_spec(policy: LimitPolicy) -> ConsumerSpec:
    return ConsumerSpec(
        group="clients",
        topics=[COMMANDS, LOAN_EVENTS],
        handlers={
            "ReserveCredit": credit.reserve_credit,
            "ReleaseCredit": credit.release_credit,
            "LoanDisbursed": credit.on_loan_disbursed,
            "RepaymentApplied": credit.on_repayment_applied,
            "LoanClosed": credit.loan_closed_handler(policy),
            "LoanWrittenOff": credit.on_loan_written_off,
        },
    )
