"""Arrears ageing, late penalties and portfolio at risk.

- An installment is overdue the day after its due date: on the due date itself it is
  merely due. ``days_in_arrears`` counts from the oldest installment with anything
  still owed.
- Buckets: ``current`` (0 days), ``1-30``, ``31-60``, ``61-90``, ``90+`` (91 days on).
- A late penalty is charged once per overdue installment, when the installment is
  more than ``tolerance_days`` late: flat (the amount) or a fraction of the amount
  overdue on it, rounded half up to the cent.
- PAR(N) = outstanding principal of the loans more than N days in arrears / total
  outstanding principal, rounded half up to 4 decimals (0.0523 = 5.23 %).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from services.loans.domain.allocation import InstallmentDue
from services.loans.domain.money import RATIO_PLACES, ZERO, round_money
from services.loans.domain.products import Penalty, PenaltyKind

Bucket = Literal["current", "1-30", "31-60", "61-90", "90+"]


def overdue(installments: Iterable[InstallmentDue], business_date: date) -> list[InstallmentDue]:
    """Installments past their due date with something still owed, oldest first."""
    late = [i for i in installments if i.due_date < business_date and i.total > 0]
    return sorted(late, key=lambda i: (i.due_date, i.number))


def overdue_amount(installments: Iterable[InstallmentDue], business_date: date) -> Decimal:
    return sum((i.total for i in overdue(installments, business_date)), ZERO)


def days_in_arrears(installments: Sequence[InstallmentDue], business_date: date) -> int:
    """Days since the oldest installment with anything owed fell due (0 if none overdue)."""
    late = overdue(installments, business_date)
    return (business_date - late[0].due_date).days if late else 0


def arrears_bucket(days: int) -> Bucket:
    if days < 0:
        raise ValueError("days in arrears cannot be negative")
    if days == 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


def penalty_for(penalty: Penalty, overdue_amount: Decimal, days_overdue: int) -> Decimal:
    """The penalty on an installment ``days_overdue`` late with ``overdue_amount`` owed.

    Zero within the tolerance (``days_overdue <= tolerance_days``) or when nothing
    is overdue.
    """
    if days_overdue <= penalty.tolerance_days or overdue_amount <= 0:
        return ZERO
    if penalty.kind is PenaltyKind.FLAT:
        return round_money(penalty.value)
    return round_money(overdue_amount * penalty.value)


def par_ratio(outstanding_by_loan: Iterable[tuple[Decimal, int]], threshold_days: int) -> Decimal:
    """Portfolio at risk: share of outstanding principal more than ``threshold_days`` late.

    ``outstanding_by_loan`` yields ``(outstanding principal, days in arrears)`` per loan.
    An empty portfolio has a PAR of 0.
    """
    total = ZERO
    at_risk = ZERO
    for outstanding, days in outstanding_by_loan:
        total += outstanding
        if days > threshold_days:
            at_risk += outstanding
    if total <= 0:
        return Decimal("0.0000")
    return (at_risk / total).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
