"""What it takes to close a loan on a date, and what is waived if it closes then.

payoff(date) = principal outstanding
             + interest owed on installments due on or before the date
             + interest accrued in the current period, to the date, by the product's
               day count (actual/365, actual/360, 30/360)
             + fees and penalties owed on installments due on or before the date, and
               what is still owed of the fees charged at disbursement.

The current period runs from the previous due date (or the disbursement date) to the
first installment due after the date. Interest accrues on the outstanding principal
(declining balance) or on the loan's principal (flat, whose interest is computed on
the original principal), less what the current installment has already had paid of
its interest; it never exceeds the interest still scheduled. Interest of later periods
is not earned: it is waived, as are the per-installment fees of installments not yet
due. ``settlement`` is the schedule's open installments as they are after the waiver:
allocating the payoff amount over it pays everything.

(Interest a product defers with ``grace_interest`` is scheduled on later installments;
for a payoff during such a product's grace the interest of the past grace periods is
not counted: a simplification in the borrower's favour.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from services.loans.domain.allocation import InstallmentDue
from services.loans.domain.money import ZERO
from services.loans.domain.products import InterestMethod, ProductTerms
from services.loans.domain.schedule import accrued_interest, fees_at_disbursement
from shared.errors import InvalidInput

OPEN = ("pending", "overdue")


class InstallmentState(Protocol):
    """An installment as stored: what was due and what has been paid."""

    @property
    def number(self) -> int: ...
    @property
    def due_date(self) -> date: ...
    @property
    def principal_due(self) -> Decimal: ...
    @property
    def interest_due(self) -> Decimal: ...
    @property
    def fees_due(self) -> Decimal: ...
    @property
    def penalties_due(self) -> Decimal: ...
    @property
    def principal_paid(self) -> Decimal: ...
    @property
    def interest_paid(self) -> Decimal: ...
    @property
    def fees_paid(self) -> Decimal: ...
    @property
    def penalties_paid(self) -> Decimal: ...
    @property
    def status(self) -> str: ...


def owed(item: InstallmentState) -> InstallmentDue:
    return InstallmentDue(
        number=item.number, due_date=item.due_date,
        principal=item.principal_due - item.principal_paid,
        interest=item.interest_due - item.interest_paid,
        fees=item.fees_due - item.fees_paid,
        penalties=item.penalties_due - item.penalties_paid)


@dataclass(frozen=True)
class Payoff:
    as_of: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalties: Decimal
    interest_waived: Decimal
    fees_waived: Decimal
    accrued_from: date | None
    """Start of the current period (None when every installment is already due)."""
    settlement: tuple[InstallmentDue, ...]

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalties


def compute_payoff(items: Sequence[InstallmentState], terms: ProductTerms, *,
                   loan_principal: Decimal, disbursed_on: date, as_of: date) -> Payoff:
    """The payoff of a disbursed loan on ``as_of`` (see the module docstring)."""
    if as_of < disbursed_on:
        raise InvalidInput(f"the loan was disbursed on {disbursed_on}; a payoff date must "
                           "not be earlier", field="date")
    ordered = sorted(items, key=lambda i: (i.due_date, i.number))
    open_items = [i for i in ordered if i.status in OPEN]
    due = [owed(i) for i in open_items if i.due_date <= as_of]
    future_states = [i for i in open_items if i.due_date > as_of]
    future = [owed(i) for i in future_states]
    accrued_from: date | None = None
    accrued = ZERO
    future_interest = sum((f.interest for f in future), ZERO)
    if future_states:
        current = future_states[0]
        earlier = [i.due_date for i in ordered if i.due_date < current.due_date]
        accrued_from = max([disbursed_on, *earlier])
        principal_now = sum((i.principal for i in due + future), ZERO)
        base = loan_principal if terms.interest_method is InterestMethod.FLAT else principal_now
        accrued = accrued_interest(base, terms.annual_rate, terms.day_count, accrued_from,
                                   max(as_of, accrued_from))
        accrued = min(max(accrued - current.interest_paid, ZERO), future_interest)
    # the disbursement fee is earned; per-installment fees of future installments are not
    fee_first = fees_at_disbursement(terms, loan_principal)
    first_number = min((i.number for i in ordered), default=0)
    settled_future: list[InstallmentDue] = []
    interest_left = accrued
    fees_waived = ZERO
    for f in future:
        interest = min(f.interest, interest_left)
        interest_left -= interest
        keep_fees = min(f.fees, fee_first) if f.number == first_number else ZERO
        fees_waived += f.fees - keep_fees
        settled_future.append(InstallmentDue(f.number, f.due_date, f.principal, interest,
                                             keep_fees, f.penalties))
    settlement = tuple(due + settled_future)
    return Payoff(
        as_of=as_of,
        principal=sum((s.principal for s in settlement), ZERO),
        interest=sum((s.interest for s in settlement), ZERO),
        fees=sum((s.fees for s in settlement), ZERO),
        penalties=sum((s.penalties for s in settlement), ZERO),
        interest_waived=future_interest - accrued,
        fees_waived=fees_waived,
        accrued_from=accrued_from,
        settlement=settlement,
    )
