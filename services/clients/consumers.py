"""The clients consumer group: saga commands, the loans that carry exposure, and STOP
replies that withdraw a client's SMS consent."""

from __future__ import annotations

from services.clients.domain.credit import LimitPolicy
from services.clients.handlers import behaviour, clients, credit, group_credit
from shared.app import ConsumerSpec
from shared.contracts.clients import COMMANDS
from shared.contracts.loans import EVENTS as LOAN_EVENTS
from shared.contracts.notifications import EVENTS as SMS_EVENTS


def consumer_spec(policy: LimitPolicy) -> ConsumerSpec:
    return ConsumerSpec(
        group="clients",
        topics=[COMMANDS, LOAN_EVENTS, SMS_EVENTS],
        handlers={
            "ReserveCredit": credit.reserve_credit,
            "ReleaseCredit": credit.release_credit,
            "LoanDisbursed": credit.on_loan_disbursed,
            "RepaymentApplied": credit.on_repayment_applied,
            "LoanClosed": credit.loan_closed_handler(policy),
            "LoanWrittenOff": credit.on_loan_written_off,
            "LoanInArrears": behaviour.on_loan_in_arrears,
            "LoanArrearsCured": behaviour.on_loan_arrears_cured,
            "SmsOptedOut": clients.on_sms_opted_out,
            "GroupLoanActive": group_credit.on_group_loan_active,
            "GroupLoanClosed": group_credit.on_group_loan_ended,
            "GroupLoanDisbursementFailed": group_credit.on_group_loan_ended,
            "GroupInArrears": group_credit.on_group_in_arrears,
            "GroupArrearsCured": group_credit.on_group_arrears_cured,
        },
    )
