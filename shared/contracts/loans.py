"""Contracts of the loans service (``loans.events``, keyed by loan id)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.common import Amount, Currency, Msisdn, PositiveAmount
from shared.envelope import Contract, register

EVENTS = "loans.events"


class LoanEvent(Contract):
    topic: ClassVar[str] = EVENTS
    loan_id: str
    client_id: str


@register
class LoanSubmitted(LoanEvent):
    partner_id: str
    product_id: str
    principal: PositiveAmount
    term: int
    currency: Currency = "MAD"
    submitted_by: str
    reference: str | None = Field(default=None, description=(
        "the loan's short reference (L + 8 characters + a check character) a borrower "
        "types as the wallet payment reference"))
    purpose: str | None = None
    office_id: str | None = Field(default=None, description=(
        "the office the loan belongs to (its client's at application)"))


@register
class LoanApproved(LoanEvent):
    approved_by: str
    saga_id: str


@register
class LoanRejected(LoanEvent):
    reason: str
    rejected_by: str


@register
class LoanWithdrawn(LoanEvent):
    reason: str


@register
class LoanDisbursed(LoanEvent):
    partner_id: str
    saga_id: str
    principal: PositiveAmount
    currency: Currency = "MAD"
    msisdn: Msisdn
    disbursed_on: dt.date
    installments: int
    first_due_date: dt.date
    first_due_amount: Amount
    total_repayable: Amount
    fees_at_disbursement: Amount
    reference: str | None = Field(default=None, description="the loan's short reference")
    office_id: str | None = Field(default=None, description=(
        "the office the loan belongs to (payments' accounting books per office)"))
    teg: Decimal | None = Field(default=None, description=(
        "effective global rate (TEG): the annualised rate (periodic IRR x periods a year) "
        "equating the principal paid out with every installment, fees included; a "
        "fraction, 6 decimals"))
    total_cost_of_credit: Amount | None = Field(default=None, description=(
        "everything repaid beyond the principal: interest and fees"))


@register
class LoanDisbursementFailed(LoanEvent):
    saga_id: str
    principal: Amount
    reason: str


class AllocationLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    installment: int
    component: Literal["penalties", "fees", "interest", "principal"]
    amount: Amount


@register
class RepaymentApplied(LoanEvent):
    payment_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    allocation: list[AllocationLine]
    principal_paid: Amount
    interest_paid: Amount
    fees_paid: Amount
    penalties_paid: Amount
    outstanding_principal: Amount
    outstanding_total: Amount
    next_due_date: dt.date | None
    next_due_amount: Amount | None
    closes_loan: bool
    recovery: bool = Field(default=False, description=(
        "money received on a written-off loan: applied to what was written off, the loan "
        "stays written off; payments books it to recovery income"))
    recovered_total: Amount | None = Field(default=None, description=(
        "a recovery: everything recovered on the loan so far, this payment included"))
    reference: str | None = Field(default=None, description=(
        "the reference the payment carried, when it is not the loan id (a short reference)"))
    # What was not allocated to any installment, left in repayment suspense for payments
    # to refund: the part of a payment beyond what closes the loan (= ``excess``).
    unallocated: Amount = Decimal("0.00")
    excess: Amount = Field(default=Decimal("0.00"), description=(
        "the part of the payment beyond what closes the loan: to be refunded to the payer "
        "(and only that part; the rest is applied)"))
    settled_early: bool = Field(default=False, description=(
        "the payment reached the payoff amount and closed the loan before its term; "
        "``LoanSettledEarly`` carries the interest waived"))
    interest_waived: Amount = Decimal("0.00")


@register
class RepaymentRejected(LoanEvent):
    """``client_id`` is empty when the loan is unknown."""

    payment_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    payer_msisdn: Msisdn | None = None
    reason: Literal["unknown_loan", "loan_not_active", "loan_closed", "overpayment",
                    "currency_mismatch", "reference_check_failed"]
    refundable_amount: Amount
    detail: str = ""
    held_for_review: bool = Field(default=False, description=(
        "keep the money in suspense for an operator, refund nothing (a mistyped short "
        "reference: ``reason`` reference_check_failed, ``refundable_amount`` 0)"))


@register
class LoanClosed(LoanEvent):
    principal: Amount
    closed_on: dt.date
    max_days_in_arrears: int | None = Field(default=None, ge=0, description=(
        "the worst days in arrears the loan reached (clients' credit policy reads it)"))


@register
class LoanInArrears(LoanEvent):
    business_date: dt.date
    days_in_arrears: int
    amount_overdue: Amount
    bucket: Literal["1-30", "31-60", "61-90", "90+"]


@register
class RepaymentDue(LoanEvent):
    business_date: dt.date
    due_date: dt.date
    installment: int
    amount: Amount


@register
class LoanWrittenOff(LoanEvent):
    principal_written_off: Amount
    interest_written_off: Amount
    fees_written_off: Amount
    penalties_written_off: Amount
    written_off_by: str
    days_in_arrears: int
    proposed_by: str | None = Field(default=None, description=(
        "maker-checker: the operator who proposed it (``written_off_by`` approved it)"))
    reason: str = ""


@register
class LoanArrearsCured(LoanEvent):
    """A loan that ``LoanInArrears`` was published for owes nothing overdue any more (or
    was repaid), as of a close of business."""

    business_date: dt.date
    reference: str | None = None
    loan_closed: bool = False


class InstallmentReminder(LoanEvent):
    """Close of business reminds of an installment, once per installment, kind and date."""

    business_date: dt.date
    installment: int
    due_date: dt.date
    amount_due: Amount
    reference: str | None = None


@register
class InstallmentDueSoon(InstallmentReminder):
    days_before: int = Field(ge=1)


@register
class InstallmentDueToday(InstallmentReminder):
    pass


@register
class InstallmentOverdue(InstallmentReminder):
    days_late: int = Field(ge=1)


@register
class LoanWriteOffProposed(LoanEvent):
    request_id: str
    proposed_by: str
    reason: str
    days_in_arrears: int


@register
class LateChargesWaived(LoanEvent):
    """A waiver of late charges approved by a second operator: what each installment no
    longer owes."""

    request_id: str
    amount: Amount
    installments: list[int]
    proposed_by: str
    approved_by: str
    reason: str


class AccruedLoan(BaseModel):
    """One active loan's figures for a business date, in an ``InterestAccrued`` batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loan_id: str = Field(min_length=1, max_length=100)
    interest: Amount = Field(description=(
        "the interest the loan earned that day, by its product's day count "
        "(actual/365, actual/360 or 30/360), ≥ 0"))
    days_in_arrears: int = Field(ge=0, le=36500)
    product_id: str | None = Field(default=None, max_length=100)
    office_id: str | None = Field(default=None, max_length=100)
    restructured: bool = False
    fees_due: Amount = Field(default=Decimal("0.00"), ge=0, description=(
        "the fees of the loan's installments falling due that day, still unpaid at close "
        "of business (version 2; zero when an older event does not carry it)"))


@register
class InterestAccrued(Contract):
    """Published by close of business, keyed by the business date: every active loan's
    interest for the day, the fees of its installments falling due that day and its days
    in arrears, in batches of at most a few thousand loans (``batch`` of ``batches``).
    Payments posts the accruals (accrual basis: interest day by day, fees when they fall
    due) and the provisions from it, idempotently per date and loan. Version 2 added
    ``fees_due`` (optional: a version 1 event still parses, with no fees)."""

    topic: ClassVar[str] = EVENTS
    version: ClassVar[int] = 2
    business_date: dt.date
    batch: int = Field(default=0, ge=0)
    batches: int = Field(default=1, ge=1)
    loans: list[AccruedLoan]


@register
class LoanSettledEarly(LoanEvent):
    """A payment at or above the payoff amount closed the loan before its term. The
    interest of the periods not yet run is not earned: it is waived (and per-installment
    fees of installments not yet due). Payments books the waiver (the interest receivable
    scheduled but never earned), notifications tells the borrower."""

    payment_id: str
    settled_on: dt.date
    payoff_amount: Amount
    principal_paid: Amount
    interest_paid: Amount
    interest_waived: Amount
    fees_waived: Amount = Decimal("0.00")
    excess: Amount = Decimal("0.00")
    currency: Currency = "MAD"


class ScheduleLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    installment: int
    due_date: dt.date
    principal: Amount
    interest: Amount
    fees: Amount
    penalties: Amount = Decimal("0.00")


@register
class LoanScheduleRebuilt(LoanEvent):
    """The loan's schedule has a new version (the previous one is kept): after a partial
    prepayment (``prepayment_reduce_term`` / ``prepayment_reduce_installment``), or a
    rescheduling/restructuring approved by a second operator (``restructure``, with a
    moratorium or not). ``installments`` are the open installments of the new version
    with what each owes."""

    reason: Literal["prepayment_reduce_term", "prepayment_reduce_installment", "restructure"]
    schedule_version: int
    business_date: dt.date
    installments: list[ScheduleLine]
    outstanding_principal: Amount
    interest_before: Amount = Field(description="interest owed under the previous version")
    interest_after: Amount = Field(description="interest owed under the new version")
    capitalised_interest: Amount = Field(default=Decimal("0.00"), description=(
        "interest turned into principal by a restructuring (moves from interest to "
        "principal receivable)"))
    restructured: bool = False
    request_id: str | None = None
    approved_by: str | None = None


@register
class CashCollectionRecorded(LoanEvent):
    """A loan officer collected cash for a loan against a collection sheet. Loans moves
    no money: payments books ``amount`` to ``cash_account`` (the branch's cash, against
    repayment suspense) and publishes ``RepaymentReceived`` with ``payment_id`` =
    ``collection_id``, ``provider`` "cash", ``external_ref`` = ``sheet_id`` and
    ``received_at`` = ``collected_at`` — once per ``collection_id``."""

    collection_id: str
    sheet_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    office_id: str
    office_path: str
    branch_office_id: str = Field(description="the branch whose cash took the money")
    cash_account: str = Field(description="``cash:branch:<branch office id>``")
    officer_id: str | None = None
    group_id: str | None = None
    collected_on: dt.date
    collected_at: dt.datetime
    recorded_by: str


@register
class BranchCashReconciled(Contract):
    """A branch's day-end cash count (keyed by office id): ``expected`` is what its
    officers recorded on collection sheets that day, ``declared`` what was counted.
    Payments books ``difference`` (declared - expected) between ``cash_account`` and
    ``suspense_account``: a shortage (< 0) debits suspense and credits cash, an
    overage (> 0) the reverse; nothing when 0. Idempotent on ``reconciliation_id``."""

    topic: ClassVar[str] = EVENTS
    reconciliation_id: str
    office_id: str
    office_path: str
    business_date: dt.date
    expected: Amount
    declared: Amount
    difference: Amount
    currency: Currency = "MAD"
    cash_account: str
    suspense_account: str
    collections: int = Field(ge=0)
    declared_by: str


class GroupMemberRepayment(BaseModel):
    """One member's line in a ``GroupRepaymentSummary``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str
    loan_id: str
    name: str | None = Field(default=None, max_length=60, description=(
        "how the group leader knows the member (first name); the SMS falls back to the "
        "loan's short reference"))
    reference: str | None = Field(default=None, description="the member loan's short reference")
    paid: Amount = Field(description="what the member's loan received at this meeting")
    still_owing: Amount = Field(description=(
        "what the member still owes that was due on or before the meeting date, after "
        "this meeting's repayments (0: the member is up to date)"))


@register
class GroupRepaymentSummary(Contract):
    """Published by loans once a group's repayments of a meeting are applied (a group
    collection split across members, or the collection sheet's lines of that group),
    keyed by group loan id: what each member paid and still owes. Notifications texts the
    group's leader one summary per group and meeting date (a republished summary of the
    same meeting sends nothing more)."""

    topic: ClassVar[str] = EVENTS
    group_id: str
    group_loan_id: str | None = None
    leader_client_id: str
    meeting_date: dt.date
    members: list[GroupMemberRepayment] = Field(min_length=1)
    total_paid: Amount
    currency: Currency = "MAD"


# --- group loans (joint liability), keyed by group id ------------------------------

class GroupLoanEvent(Contract):
    topic: ClassVar[str] = EVENTS
    group_id: str
    group_loan_id: str
    member_ids: list[str]


@register
class GroupLoanActive(GroupLoanEvent):
    """Every member's loan of the group loan was paid out and is active (one saga). Clients
    refuses to dissolve the group or let a member go while a group loan is live."""

    loan_ids: list[str]
    saga_id: str
    total_principal: Amount
    currency: Currency = "MAD"
    cover_arrears: bool = Field(default=False, description=(
        "the group's rule (joint liability): the group's money covers a member in arrears "
        "— loans applies a group's overpayment to it, savings lets other members' "
        "compulsory savings cover it (false when an older event does not carry it)"))


@register
class GroupLoanClosed(GroupLoanEvent):
    """Every member's loan ended (closed or written off). ``within_tolerance``: every one
    closed no later than the group's arrears tolerance — only then the group moves to its
    next cycle (``next_cycle``)."""

    within_tolerance: bool
    max_days_in_arrears: int = Field(ge=0)
    next_cycle: int = Field(ge=1)


@register
class GroupLoanDisbursementFailed(GroupLoanEvent):
    """The group saga gave up: no member's loan is active. ``payouts_to_recover``: members
    paid before another member's payout failed — not reversed by loans (their loans stay
    ``disbursing`` and their credit reserved), flagged for an operator."""

    saga_id: str
    reason: str
    payouts_to_recover: list[str] = Field(default_factory=list, description="member loan ids")


@register
class GroupInArrears(GroupLoanEvent):
    """A member of a live group loan is in arrears: joint liability — clients gives no
    member of the group new credit until ``GroupArrearsCured``."""

    loans_in_arrears: list[str]
    business_date: dt.date


@register
class GroupArrearsCured(GroupLoanEvent):
    business_date: dt.date


class GroupRepaymentLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    loan_id: str
    client_id: str
    payment_id: str = Field(description="the member's repayment (its RepaymentApplied)")
    amount: Amount


@register
class GroupRepaymentSplit(GroupLoanEvent):
    """One collection for the group (``payment_id``, told with the group loan id as its
    reference) split over the members' loans, oldest due first; each line is applied as
    the member's own repayment (``RepaymentApplied`` with the line's ``payment_id``).
    ``unallocated`` is left in suspense for payments to refund to the payer."""

    payment_id: str
    amount: Amount
    lines: list[GroupRepaymentLine]
    unallocated: Amount
    currency: Currency = "MAD"
