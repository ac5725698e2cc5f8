"""Which event sends which SMS, with which variables (one SMS per event and template)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
from shared.envelope import Contract


@dataclass(frozen=True)
class Trigger:
    template: str
    client_id: str | None
    loan_id: str | None
    variables: dict[str, object] = field(default_factory=dict)
    phone: str | None = None  # when the event names the phone (a refund to the payer)


def trigger_for(event: Contract) -> Trigger | None:
    """The SMS an event asks for, or None when it asks for none."""
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
    return None
