"""Which event sends which SMS, with which variables (one SMS per event and template)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.contracts.clients import ClientKycRejected, ClientKycVerified
from shared.contracts.loans import (
    LoanClosed,
    LoanDisbursed,
    LoanDisbursementFailed,
    LoanInArrears,
    RepaymentApplied,
    RepaymentDue,
)
from shared.contracts.payments import RefundIssued
from shared.contracts.savings import (
    AccountDormant,
    DepositPosted,
    InterestPosted,
    WithdrawalCompleted,
)
from shared.envelope import Contract


@dataclass(frozen=True)
class Trigger:
    template: str
    client_id: str | None
    loan_id: str | None
    variables: dict[str, object] = field(default_factory=dict)
    phone: str | None = None  # when the event names the phone (a refund to the payer)


def trigger_for(event: Contract, *, balance: Decimal | None = None) -> Trigger | None:
    """The SMS an event asks for, or None when it asks for none.

    ``balance`` is the account's last known ledger balance, for a savings event that
    does not carry one (``AccountDormant``); without it the notice names no figure.
    """
    if isinstance(event, LoanDisbursed):
        return Trigger("loan_disbursed", event.client_id, event.loan_id, {
            "amount": event.principal, "wallet": event.msisdn,
            "first_due_date": event.first_due_date, "first_due_amount": event.first_due_amount,
        })
    if isinstance(event, RepaymentApplied):
        if event.closes_loan or event.next_due_date is None or event.next_due_amount is None:
            return None  # LoanClosed tells the client the loan is repaid
        return Trigger("repayment_received", event.client_id, event.loan_id, {
            "amount": event.amount, "remaining": event.outstanding_total,
            "next_due_date": event.next_due_date, "next_due_amount": event.next_due_amount,
        })
    if isinstance(event, RepaymentDue):
        return Trigger("repayment_due", event.client_id, event.loan_id,
                       {"amount": event.amount, "due_date": event.due_date})
    if isinstance(event, LoanInArrears):
        return Trigger("arrears_notice", event.client_id, event.loan_id,
                       {"amount": event.amount_overdue, "days": event.days_in_arrears})
    if isinstance(event, LoanDisbursementFailed):
        return Trigger("disbursement_failed", event.client_id, event.loan_id,
                       {"amount": event.principal})
    if isinstance(event, LoanClosed):
        return Trigger("loan_closed", event.client_id, event.loan_id,
                       {"amount": event.principal})
    if isinstance(event, ClientKycVerified):
        return Trigger("kyc_verified", event.client_id, None)
    if isinstance(event, ClientKycRejected):
        return Trigger("kyc_rejected", event.client_id, None)
    if isinstance(event, RefundIssued):
        return Trigger("refund_issued", None, event.loan_id, {"amount": event.amount},
                       phone=event.msisdn)
    return savings_trigger(event, balance)


def savings_trigger(event: Contract, balance: Decimal | None = None) -> Trigger | None:
    """Deposit received, withdrawal paid, interest posted, account dormant: each with
    the account's ledger balance (what it holds, holds included)."""
    if isinstance(event, DepositPosted):
        return Trigger("deposit_received", event.client_id, None, {
            "amount": event.amount, "balance": event.ledger_balance})
    if isinstance(event, WithdrawalCompleted):
        return Trigger("withdrawal_paid", event.client_id, None, {
            "amount": event.amount, "fee": event.fee, "balance": event.ledger_balance})
    if isinstance(event, InterestPosted):
        return Trigger("interest_posted", event.client_id, None, {
            "amount": event.net, "period_end": event.period_end,
            "balance": event.ledger_balance})
    if isinstance(event, AccountDormant):
        if balance is None:
            return Trigger("account_dormant_no_balance", event.client_id, None)
        return Trigger("account_dormant", event.client_id, None, {"balance": balance})
    return None
