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
    # An excess within the product's overpayment tolerance: accepted, not allocated to
    # any installment, left in repayment suspense for payments to refund.
    unallocated: Amount = Decimal("0.00")


@register
class RepaymentRejected(LoanEvent):
    """``client_id`` is empty when the loan is unknown."""

    payment_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    payer_msisdn: Msisdn | None = None
    reason: Literal["unknown_loan", "loan_not_active", "loan_closed", "overpayment",
                    "currency_mismatch"]
    refundable_amount: Amount
    detail: str = ""


@register
class LoanClosed(LoanEvent):
    principal: Amount
    closed_on: dt.date


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


@register
class InterestAccrued(Contract):
    """Published by close of business, keyed by the business date: every active loan's
    interest for the day and its days in arrears, in batches of at most a few thousand
    loans (``batch`` of ``batches``). Payments posts the accruals (accrual basis) and
    the provisions from it, idempotently per date and loan."""

    topic: ClassVar[str] = EVENTS
    business_date: dt.date
    batch: int = Field(default=0, ge=0)
    batches: int = Field(default=1, ge=1)
    loans: list[AccruedLoan]
