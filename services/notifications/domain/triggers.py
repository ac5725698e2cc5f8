"""Which event sends which SMS, with which variables (one SMS per event and template)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.contracts.clients import ClientKycRejected, ClientKycVerified
from shared.contracts.loans import (
    GroupRepaymentSummary,
    InstallmentDueSoon,
    InstallmentDueToday,
    InstallmentOverdue,
    InstallmentReminder,
    LateChargesWaived,
    LoanArrearsCured,
    LoanClosed,
    LoanDisbursed,
    LoanDisbursementFailed,
    LoanInArrears,
    LoanScheduleRebuilt,
    LoanSettledEarly,
    RepaymentApplied,
    RepaymentDue,
)
from shared.contracts.payments import RefundFailed, RefundIssued
from shared.contracts.savings import (
    REFERENCE_PREFIX,
    AccountDormant,
    DepositPosted,
    InterestPosted,
    WithdrawalCompleted,
    WithdrawalInDoubt,
    WithdrawalReleased,
)
from shared.envelope import Contract


@dataclass(frozen=True)
class Trigger:
    template: str
    client_id: str | None
    loan_id: str | None
    variables: dict[str, object] = field(default_factory=dict)
    phone: str | None = None  # when the event names the phone (a refund to the payer)
    # One message per key whatever the event id (a reminder republished under a new id
    # after a close of business rerun; a group's summary of one meeting told twice).
    dedup_key: str | None = None


def savings_account_of(event: RefundIssued | RefundFailed) -> str | None:
    """The savings account a refund is about (its ``SAV-`` reference in ``loan_id``, or
    ``savings_account_id`` where payments sets it), or None for a loan's refund."""
    explicit = getattr(event, "savings_account_id", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    if event.loan_id[:len(REFERENCE_PREFIX)].upper() == REFERENCE_PREFIX:
        return event.loan_id[len(REFERENCE_PREFIX):].lower()
    return None


REMINDER_KINDS: dict[type[InstallmentReminder], str] = {
    InstallmentDueSoon: "installment_due_soon",
    InstallmentDueToday: "installment_due_today",
    InstallmentOverdue: "installment_overdue",
}


def reminder_trigger(event: InstallmentReminder) -> Trigger | None:
    """A reminder of an installment, with the short reference to pay it by (the loan id
    when the loan has none: payments resolves both). Once per loan, installment, kind
    and business date, whatever event id carries it."""
    template = REMINDER_KINDS.get(type(event))
    if template is None:
        return None
    variables: dict[str, object] = {
        "amount": event.amount_due, "due_date": event.due_date,
        "reference": event.reference or event.loan_id}
    if isinstance(event, InstallmentDueSoon):
        variables["days"] = event.days_before
    if isinstance(event, InstallmentOverdue):
        variables["days"] = event.days_late
    return Trigger(template, event.client_id, event.loan_id, variables, dedup_key=(
        f"{template}:{event.loan_id}:{event.installment}:{event.business_date.isoformat()}"))


def rebuilt_trigger(event: LoanScheduleRebuilt) -> Trigger | None:
    """The new schedule's next installment that asks for money (a moratorium's periods
    ask for none): its amount and date, and how many remain."""
    payable = [line for line in sorted(event.installments, key=lambda x: (x.due_date,
                                                                            x.installment))
               if line.principal + line.interest + line.fees + line.penalties > 0]
    if not payable:
        return None
    nxt = payable[0]
    return Trigger("schedule_rebuilt", event.client_id, event.loan_id, {
        "amount": nxt.principal + nxt.interest + nxt.fees + nxt.penalties,
        "due_date": nxt.due_date, "count": len(payable)})


def group_summary_trigger(event: GroupRepaymentSummary) -> Trigger:
    """The leader's summary of a meeting: members who paid, the total, and who still owes
    (by name, else by loan reference). One per group and meeting date."""
    paid = [m for m in event.members if m.paid > 0]
    owing = [m for m in event.members if m.still_owing > 0]
    key = f"group_summary:{event.group_id}:{event.meeting_date.isoformat()}"
    common: dict[str, object] = {
        "meeting_date": event.meeting_date, "paid_count": len(paid),
        "members": len(event.members), "total": event.total_paid}
    if not owing:
        return Trigger("group_summary_all_paid", event.leader_client_id, event.group_loan_id,
                       common, dedup_key=key)
    names = ", ".join(m.name or m.reference or m.loan_id for m in owing)
    return Trigger("group_summary", event.leader_client_id, event.group_loan_id, {
        **common, "owing_count": len(owing),
        "owing_total": sum((m.still_owing for m in owing), Decimal("0.00")),
        "owing_names": names}, dedup_key=key)


def trigger_for(event: Contract, *, balance: Decimal | None = None,
                account_client: str | None = None) -> Trigger | None:
    """The SMS an event asks for, or None when it asks for none.

    ``balance`` is the account's last known ledger balance, for a savings event that
    does not carry one (``AccountDormant``); without it the notice names no figure.
    ``account_client`` is the client of the savings account a refund is about, when the
    projection knows it.
    """
    if isinstance(event, LoanDisbursed):
        variables: dict[str, object] = {
            "amount": event.principal, "wallet": event.msisdn,
            "first_due_date": event.first_due_date, "first_due_amount": event.first_due_amount,
        }
        if event.teg is not None and event.total_cost_of_credit is not None:
            variables |= {"teg": event.teg, "cost": event.total_cost_of_credit}
        # without them (a publisher from before the TEG) the newest version that names
        # neither is used: see domain.templates.newest_fillable
        return Trigger("loan_disbursed", event.client_id, event.loan_id, variables)
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
    if isinstance(event, RefundIssued | RefundFailed):
        return refund_trigger(event, account_client)
    return servicing_trigger(event) or savings_trigger(event, balance)


def refund_trigger(event: RefundIssued | RefundFailed,
                   account_client: str | None = None) -> Trigger:
    """A refund sent (to the payer's phone) or failed (to the client): for a loan's
    repayment, or worded for savings when the refunded payment was a deposit."""
    sent = isinstance(event, RefundIssued)
    phone = event.msisdn if isinstance(event, RefundIssued) else None
    if savings_account_of(event) is not None:
        return Trigger("savings_refund_issued" if sent else "savings_refund_failed",
                       account_client, None, {"amount": event.amount}, phone=phone)
    return Trigger("refund_issued" if sent else "refund_failed", None, event.loan_id,
                   {"amount": event.amount}, phone=phone)


def servicing_trigger(event: Contract) -> Trigger | None:
    """Reminders, early settlement, a rebuilt schedule, waived charges, arrears cured, a
    group's meeting summary."""
    if isinstance(event, InstallmentReminder):
        return reminder_trigger(event)
    if isinstance(event, LoanSettledEarly):
        return Trigger("loan_settled_early", event.client_id, event.loan_id, {
            "amount": event.payoff_amount, "waived": event.interest_waived})
    if isinstance(event, LoanScheduleRebuilt):
        return rebuilt_trigger(event)
    if isinstance(event, LateChargesWaived):
        return Trigger("late_charges_waived", event.client_id, event.loan_id,
                       {"amount": event.amount})
    if isinstance(event, LoanArrearsCured):
        if event.loan_closed:
            return None  # LoanClosed thanks the client
        return Trigger("arrears_cured", event.client_id, event.loan_id)
    if isinstance(event, GroupRepaymentSummary):
        return group_summary_trigger(event)
    return None


def savings_trigger(event: Contract, balance: Decimal | None = None) -> Trigger | None:
    """Deposit received, withdrawal paid, interest posted, account dormant: each with
    the account's ledger balance (what it holds, holds included); a withdrawal released
    (not paid: the money stays, with the available balance) or in doubt."""
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
    if isinstance(event, WithdrawalReleased):
        return Trigger("withdrawal_released", event.client_id, None, {
            "amount": event.amount, "available": event.available_balance})
    if isinstance(event, WithdrawalInDoubt):
        return Trigger("withdrawal_in_doubt", event.client_id, None, {"amount": event.amount})
    if isinstance(event, AccountDormant):
        if balance is None:
            return Trigger("account_dormant_no_balance", event.client_id, None)
        return Trigger("account_dormant", event.client_id, None, {"balance": balance})
    return None
