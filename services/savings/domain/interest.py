"""Interest maths, pure: daily accrual, posting periods, withholding tax, term deposits.

Conventions (written out in the reference tests, ``tests/unit/savings``):

- Day count actual/365 with leap years: a day's interest is ``balance * rate / N`` where
  N is the number of days of that day's year (366 in a leap year), so a full year at
  a constant balance earns exactly ``balance * rate`` whatever the year.
- A day's accrual is kept to 10 decimals (half up), never rounded to the centime.
- Daily-balance basis: each day accrues on that day's closing balance. Minimum-balance
  basis: every day of the period accrues on the lowest closing balance of the period,
  known only at its end.
- Posting (the last day of a month, or of a quarter: March, June, September,
  December): the accrued interest plus what the last posting left is rounded *down* to
  the centime and credited (``gross``); the fraction of a centime left is carried to
  the next posting, never lost and never paid twice. The withholding tax is
  ``gross * rate`` half up to the centime, debited with the posting.
- A period never spans two years (months and quarters end by 31 December), so N is the
  same for every day of a period.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.savings.domain.money import ZERO, accrual, cents_down, cents_half_up
from services.savings.domain.products import PostingPeriod


def days_in_year(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def daily_interest(balance: Decimal, annual_rate: Decimal, day: dt.date) -> Decimal:
    """The interest one day earns on ``balance`` (none on a balance of zero or less)."""
    if balance <= 0 or annual_rate <= 0:
        return ZERO
    return accrual(balance * annual_rate / days_in_year(day.year))


def last_day_of_month(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def is_period_end(day: dt.date, period: PostingPeriod) -> bool:
    if day != last_day_of_month(day):
        return False
    return period == "monthly" or day.month in (3, 6, 9, 12)


def period_start(day: dt.date, period: PostingPeriod) -> dt.date:
    """The first day of the posting period ``day`` is in."""
    if period == "monthly":
        return day.replace(day=1)
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    """``start`` to ``end``, both included."""
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def accrue_daily_balance(closing: Iterable[tuple[dt.date, Decimal]], annual_rate: Decimal
                         ) -> Decimal:
    """Interest accrued over days given with their closing balances."""
    return sum((daily_interest(b, annual_rate, d) for d, b in closing), ZERO)


def accrue_minimum_balance(closing: list[tuple[dt.date, Decimal]], annual_rate: Decimal
                           ) -> Decimal:
    """Interest of a period on its minimum closing balance, for each of its days."""
    if not closing:
        return ZERO
    lowest = min(b for _, b in closing)
    return sum((daily_interest(lowest, annual_rate, d) for d, _ in closing), ZERO)


@dataclass(frozen=True)
class Posting:
    gross: Decimal
    withholding_tax: Decimal
    carried: Decimal
    """The fraction of a centime left for the next posting."""

    @property
    def net(self) -> Decimal:
        return self.gross - self.withholding_tax


def post(accrued: Decimal, carried_in: Decimal, withholding_rate: Decimal) -> Posting:
    """What a posting credits and debits, and what it carries forward."""
    total = accrued + carried_in
    gross = cents_down(total) if total > 0 else ZERO
    tax = cents_half_up(gross * withholding_rate) if gross > 0 else ZERO
    return Posting(gross=gross, withholding_tax=min(tax, gross), carried=total - gross)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, the month's last day if it has no such day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_interest(principal: Decimal, annual_rate: Decimal, start: dt.date, end: dt.date
                  ) -> Decimal:
    """Interest of a term deposit from ``start`` (included) to ``end`` (excluded),
    accrued day by day (actual/365 with leap years), rounded down to the centime."""
    return cents_down(accrue_daily_balance(
        ((d, principal) for d in days(start, end - dt.timedelta(days=1))), annual_rate))


def early_break_interest(principal: Decimal, annual_rate: Decimal, penalty_rate: Decimal,
                         start: dt.date, broken_on: dt.date) -> Decimal:
    """Interest of a deposit broken before maturity: the days held, at the rate less the
    penalty (never below zero)."""
    return term_interest(principal, max(annual_rate - penalty_rate, ZERO), start, broken_on)


def dormant_since(last_client_transaction: dt.date, months: int) -> dt.date:
    """The first business date on which an account without client transactions since
    ``last_client_transaction`` is dormant."""
    return add_months(last_client_transaction, months) + dt.timedelta(days=1)
