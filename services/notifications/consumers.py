"""The notifications consumer group: the contact projection of clients.events (with
each client's office and officer), the loan → client table, the savings accounts'
balances, and every event that sends an SMS (loans, KYC, refunds, savings)."""

from __future__ import annotations

from services.notifications.handlers import projection
from services.notifications.handlers.policies import Policies
from services.notifications.handlers.triggers import trigger_handler
from shared.app import ConsumerSpec
from shared.contracts import clients as c
from shared.contracts import loans as ln
from shared.contracts import payments as pay
from shared.contracts import savings as sv
from shared.inbox import Handler

# The events that send an SMS (domain/triggers.py says which template).
TRIGGERS = (ln.LoanDisbursed, ln.RepaymentApplied, ln.RepaymentDue, ln.LoanInArrears,
            ln.LoanDisbursementFailed, ln.LoanClosed, ln.InstallmentDueSoon,
            ln.InstallmentDueToday, ln.InstallmentOverdue, ln.LoanSettledEarly,
            ln.LoanScheduleRebuilt, ln.LateChargesWaived, ln.LoanArrearsCured,
            ln.GroupRepaymentSummary, c.ClientKycVerified, c.ClientKycRejected,
            pay.RefundIssued, pay.RefundFailed, sv.DepositPosted, sv.WithdrawalCompleted,
            sv.WithdrawalReleased, sv.WithdrawalInDoubt, sv.InterestPosted,
            sv.AccountDormant)


def handler_table(policies: Policies) -> dict[str, Handler]:
    send = trigger_handler(policies)
    table: dict[str, Handler] = {
        "ClientRegistered": projection.client_registered_handler(policies),
        "ClientPhoneChanged": projection.on_phone_changed,
        "ClientLanguageChanged": projection.on_language_changed,
        "ClientConsentChanged": projection.on_consent_changed,
        "ClientBlocked": projection.on_blocked,
        "ClientUnblocked": projection.on_unblocked,
        "ClientTransferred": projection.on_client_transferred,
        "LoanOfficerReassigned": projection.on_officer_reassigned,
        "SavingsAccountOpened": projection.savings_account_opened_handler(policies),
        "LoanSubmitted": projection.on_loan_event,
        "LoanApproved": projection.on_loan_event,
    }
    for contract in TRIGGERS:
        table[contract.type_name()] = send
    return table


def consumer_spec(policies: Policies) -> ConsumerSpec:
    return ConsumerSpec(
        group="notifications",
        topics=[c.EVENTS, ln.EVENTS, pay.EVENTS, sv.EVENTS],
        handlers=handler_table(policies),
    )
