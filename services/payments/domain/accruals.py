"""Interest accrual for a business date (pure): the day's interest per loan by the
product's day count, and which loans stop accruing (non-accrual) or resume.

Payments does not own schedules: the loans service tells it, at close of business,
each active loan's accrual for the day (``InterestAccrued``) or — through
``POST /v1/accruals/{date}`` — the outstanding principal, annual rate and day count
from which :func:`daily_interest` computes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class DayCount(StrEnum):
    ACTUAL_365 = "actual/365"
    ACTUAL_360 = "actual/360"
    THIRTY_360 = "30/360"


def days_30_360(start: dt.date, end: dt.date) -> int:
    """Days from ``start`` to ``end`` under 30/360 (US/ISDA: a 31st counts as the 30th)."""
    d1 = min(start.day, 30)
    d2 = end.day
    if d2 == 31 and d1 == 30:
        d2 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def accrual_days(day: dt.date, day_count: DayCount) -> tuple[int, int]:
    """(days accrued for ``day``, days in the year) under ``day_count``: one actual day,
    or 30/360's days from the day before (0 on a 31st, 3 on the 1st of March after a
    28-day February)."""
    if day_count is DayCount.THIRTY_360:
        return days_30_360(day - dt.timedelta(days=1), day), 360
    return 1, 365 if day_count is DayCount.ACTUAL_365 else 360


def daily_interest(principal: Decimal, annual_rate: Decimal, day: dt.date,
                   day_count: DayCount) -> Decimal:
    """The interest a loan earns on ``day``, rounded to the cent (half up)."""
    days, year = accrual_days(day, day_count)
    return (principal * annual_rate * days / year).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LoanAccrual:
    loan_id: str
    amount: Decimal
    days_in_arrears: int = 0


@dataclass(frozen=True)
class AccrualPlan:
    accrue: tuple[LoanAccrual, ...]           # Dr interest receivable / Cr interest income
    stop: tuple[str, ...]                     # loans entering non-accrual today
    resume: tuple[str, ...]                   # loans leaving non-accrual today
    reverse: tuple[tuple[str, Decimal], ...]  # accrued-but-unpaid interest reversed


def plan(items: list[LoanAccrual], threshold_days: int, non_accrual: set[str],
         receivable: dict[str, Decimal]) -> AccrualPlan:
    """What a close of business posts: loans at or past ``threshold_days`` in arrears
    accrue nothing; those entering non-accrual have their receivable reversed; a loan
    in non-accrual that is back under the threshold accrues again."""
    accrue: list[LoanAccrual] = []
    stop: list[str] = []
    resume: list[str] = []
    reverse: list[tuple[str, Decimal]] = []
    for item in items:
        if item.days_in_arrears >= threshold_days:
            if item.loan_id not in non_accrual:
                stop.append(item.loan_id)
                held = receivable.get(item.loan_id, ZERO)
                if held > 0:
                    reverse.append((item.loan_id, held))
            continue
        if item.loan_id in non_accrual:
            resume.append(item.loan_id)
        if item.amount > 0:
            accrue.append(item)
    return AccrualPlan(tuple(accrue), tuple(stop), tuple(resume), tuple(reverse))
