"""The payments consumer groups: the sagas' commands (loans' and savings') and the loans
service's answers; savings' events; clients' events (the office projection)."""

from __future__ import annotations

from services.payments.handlers.accounting import on_loan_submitted
from services.payments.handlers.accrual_batches import on_interest_accrued
from services.payments.handlers.cash import (
    on_branch_cash_reconciled,
    on_cash_collection_recorded,
)
from services.payments.handlers.group_repayments import split_handler
from services.payments.handlers.offices import office_handlers
from services.payments.handlers.payee_lookups import validate_payee_handler
from services.payments.handlers.payouts import disburse_loan_handler
from services.payments.handlers.recoveries import on_group_loan_disbursement_failed
from services.payments.handlers.repayments import repayment_handlers
from services.payments.handlers.savings import (
    pay_out_withdrawal_handler,
    savings_event_handlers,
)
from services.payments.handlers.servicing import servicing_handlers
from services.payments.handlers.standing_instructions import on_standing_instruction_payment
from services.payments.settings import PaymentsSettings
from shared.app import ConsumerSpec
from shared.contracts import clients, loans, payments, savings


def consumer_specs(settings: PaymentsSettings) -> list[ConsumerSpec]:
    return [ConsumerSpec(
        group="payments",
        topics=[payments.COMMANDS, loans.EVENTS],
        handlers={
            "DisburseLoan": disburse_loan_handler(settings),
            # a group's members' payees validated with the provider before any payout
            "ValidatePayee": validate_payee_handler(settings),
            "PayOutWithdrawal": pay_out_withdrawal_handler(settings),
            **repayment_handlers(settings),
            # staged for the accrual workers, which post a night's batches concurrently
            "InterestAccrued": on_interest_accrued,
            "LoanSubmitted": on_loan_submitted,
            # a branch's cash: collections become repayments, day-end differences booked
            "CashCollectionRecorded": on_cash_collection_recorded,
            "BranchCashReconciled": on_branch_cash_reconciled,
            # loan servicing: early settlement's waived interest, capitalised interest,
            # late charges waived
            **servicing_handlers(),
            # group loans: a group's collection booked per member; payouts to recover
            "GroupRepaymentSplit": split_handler(settings),
            "GroupLoanDisbursementFailed": on_group_loan_disbursement_failed,
        },
    ), ConsumerSpec(
        # savings' movements booked in the ledger, and its refusals of wallet deposits:
        # a group of its own, so neither stream waits behind the other
        group="payments-savings",
        topics=[savings.EVENTS],
        handlers={**savings_event_handlers(settings),
                  "StandingInstructionPayment": on_standing_instruction_payment},
    ), ConsumerSpec(
        # the office tree and each client's office: journal lines get their office even
        # when loans' events do not carry it
        group="payments-clients",
        topics=[clients.EVENTS],
        handlers=office_handlers(),
    )]
