"""New schedule versions: after a partial prepayment, and a rescheduling/restructuring.

Both work on what is still *owed* (``InstallmentDue``); what has been paid stays where
it was. Amounts are rounded half up to the cent and the last installment absorbs the
remainders, as in ``schedule.py``; the periodic rate is the nominal one.

**Partial prepayment** (``rebuild_after_prepayment``): ``prepaid`` repays principal of
the installments not yet due; the rest of their principal is re-amortised:

- ``reduce_installment``: over the same installments, each smaller (declining balance:
  a new annuity, or equal principal, on the new balance; flat: the new balance and the
  flat interest on it for the remaining periods spread evenly);
- ``reduce_term``: keeping the installment amount (declining, equal installments: the
  same payment until the balance is repaid; equal principal and flat: the same principal
  per installment), so the last installments drop (flat: their interest is not owed).

Per-installment fees and penalties of the installments kept are unchanged.

**Restructuring** (``restructure``): every open installment (due or not) is replaced by
a new series from the restructuring date:

- a moratorium of ``moratorium`` periods with nothing to pay; its interest (declining:
  period by period on the balance; flat: on the principal) is either capitalised (added
  to the principal, with the interest overdue) or spread evenly over the installments
  that follow (not capitalised: earns no interest);
- then ``term`` installments, the first ``grace`` of them paying interest only;
- what was owed in fees and penalties is carried on the first new installment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, localcontext

from services.loans.domain.allocation import InstallmentDue
from services.loans.domain.calendar import WorkingCalendar
from services.loans.domain.money import PRECISION, ZERO, round_money, spread
from services.loans.domain.products import (
    Amortization,
    InterestMethod,
    PrepaymentRule,
    ProductTerms,
)
from services.loans.domain.schedule import (
    _declining_parts,
    _flat_parts,
    annuity_payment,
    fees_per_installment,
    scheduled_dates,
)
from shared.errors import InvalidInput

MAX_TERM = 360


def _ceil_div(a: Decimal, b: Decimal) -> int:
    whole = int(a // b)
    return whole + (1 if a - b * whole > 0 else 0)


def rebuild_after_prepayment(terms: ProductTerms, future: Sequence[InstallmentDue],
                             prepaid: Decimal, rule: PrepaymentRule) -> list[InstallmentDue]:
    """What the installments not yet due owe once ``prepaid`` has repaid principal.

    Returns one row per row given (same numbers and dates); rows dropped by
    ``reduce_term`` owe nothing. ``prepaid`` must be below their principal.
    """
    balance_before = sum((f.principal for f in future), ZERO)
    if not future or not ZERO < prepaid < balance_before:
        raise ValueError("a prepayment must be positive and below the principal not yet due")
    if rule is PrepaymentRule.NEXT_INSTALLMENTS:
        raise ValueError("next_installments does not rebuild the schedule")
    balance = balance_before - prepaid
    count = len(future)
    rate = terms.periodic_rate
    principals: list[Decimal]
    interests: list[Decimal]
    if terms.interest_method is InterestMethod.FLAT:
        if rule is PrepaymentRule.REDUCE_INSTALLMENT:
            with localcontext() as ctx:
                ctx.prec = PRECISION
                interest = round_money(balance * terms.annual_rate * count
                                       / terms.periods_per_year)
            principals, interests = spread(balance, count), spread(interest, count)
        else:
            per = max(f.principal for f in future)
            kept = min(count, _ceil_div(balance, per))
            principals = [per] * (kept - 1) + [balance - per * (kept - 1)]
            interests = [f.interest for f in future[:kept]]
    elif rule is PrepaymentRule.REDUCE_INSTALLMENT:
        if terms.amortization is Amortization.EQUAL_PRINCIPAL:
            principals = spread(balance, count)
        else:
            payment = annuity_payment(balance, rate, count)
            principals = []
            left = balance
            for k in range(count):
                part = left if k == count - 1 else min(payment - round_money(left * rate), left)
                principals.append(max(part, ZERO))
                left -= principals[-1]
        interests = _interest_on(balance, principals, rate)
    else:
        principals = []
        left = balance
        if terms.amortization is Amortization.EQUAL_PRINCIPAL:
            per = max(f.principal for f in future)
            while left > 0 and len(principals) < count:
                part = left if len(principals) == count - 1 else min(per, left)
                principals.append(part)
                left -= part
        else:
            payment = max(f.principal + f.interest for f in future)
            while left > 0 and len(principals) < count:
                interest = round_money(left * rate)
                last = len(principals) == count - 1
                part = left if last else min(max(payment - interest, ZERO), left)
                if part == 0:  # the payment no longer covers the interest: keep the term
                    part = left if last else spread(left, count - len(principals))[0]
                principals.append(part)
                left -= part
        interests = _interest_on(balance, principals, rate)
    out: list[InstallmentDue] = []
    for k, row in enumerate(future):
        if k < len(principals):
            out.append(replace(row, principal=principals[k], interest=interests[k]))
        else:
            out.append(replace(row, principal=ZERO, interest=ZERO, fees=ZERO,
                               penalties=ZERO))
    return out


def _interest_on(balance: Decimal, principals: Sequence[Decimal], rate: Decimal
                 ) -> list[Decimal]:
    interests = []
    for part in principals:
        interests.append(round_money(balance * rate))
        balance -= part
    return interests


@dataclass(frozen=True)
class RestructureTerms:
    term: int
    """Installments that repay, after the moratorium (grace ones included)."""
    grace: int = 0
    """Of those, how many pay interest only."""
    moratorium: int = 0
    """Periods with nothing to pay before them."""
    capitalise_interest: bool = False

    def validate(self) -> None:
        if not 1 <= self.term <= MAX_TERM:
            raise InvalidInput(f"term must be between 1 and {MAX_TERM} installments",
                               field="term")
        if not 0 <= self.grace < self.term:
            raise InvalidInput("grace must be between 0 and term - 1", field="grace")
        if not 0 <= self.moratorium <= 24:
            raise InvalidInput("moratorium must be between 0 and 24 periods",
                               field="moratorium")


@dataclass(frozen=True)
class Restructured:
    installments: tuple[InstallmentDue, ...]
    """The new installments (what each will owe), numbered from 1 in order."""
    capitalised_interest: Decimal
    moratorium_interest: Decimal
    principal_before: Decimal
    principal_after: Decimal


def restructure(terms: ProductTerms, open_owed: Sequence[InstallmentDue], as_of: date,
                params: RestructureTerms, *, loan_principal: Decimal,
                calendar: WorkingCalendar | None = None) -> Restructured:
    """The open installments replaced by a new series from ``as_of`` (module docstring)."""
    params.validate()
    principal = sum((o.principal for o in open_owed), ZERO)
    if principal <= 0:
        raise InvalidInput("the loan has no principal left to reschedule", field="loan_id")
    overdue_interest = sum((o.interest for o in open_owed if o.due_date <= as_of), ZERO)
    each_fee = fees_per_installment(terms, loan_principal)
    future_count = sum(1 for o in open_owed if o.due_date > as_of)
    carried = max(sum((o.fees for o in open_owed), ZERO) - each_fee * future_count, ZERO)
    penalties = sum((o.penalties for o in open_owed), ZERO)
    rate = terms.periodic_rate
    moratorium_interest = ZERO
    balance = principal
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for _ in range(params.moratorium):
            if terms.interest_method is InterestMethod.FLAT:
                charge = round_money(principal * rate)
            else:
                charge = round_money(balance * rate)
            moratorium_interest += charge
            if params.capitalise_interest:
                balance += charge
    capitalised = ZERO
    deferred = overdue_interest + moratorium_interest
    if params.capitalise_interest:
        capitalised = overdue_interest + moratorium_interest
        balance = principal + capitalised
        deferred = ZERO
    shape = replace(terms, grace_principal=params.grace, grace_interest=0)
    if terms.interest_method is InterestMethod.FLAT:
        principals, interests = _flat_parts(shape, balance, params.term)
    else:
        principals, interests = _declining_parts(shape, balance, params.term)
    interests = [i + s for i, s in zip(interests, spread(deferred, params.term), strict=True)]
    dates = scheduled_dates(terms, as_of, params.moratorium + params.term, calendar)
    dates = dates[params.moratorium:]
    rows = tuple(
        InstallmentDue(number=k + 1, due_date=dates[k], principal=principals[k],
                       interest=interests[k], fees=each_fee + (carried if k == 0 else ZERO),
                       penalties=penalties if k == 0 else ZERO)
        for k in range(params.term))
    return Restructured(rows, capitalised, moratorium_interest, principal, balance)
