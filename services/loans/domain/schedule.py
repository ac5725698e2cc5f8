"""Repayment schedules: due dates and the amounts of each installment.

Conventions
-----------
- **Rounding.** Every installment part is rounded to the cent, half up
  (``money.round_money``); the last installment absorbs every rounding remainder, so
  the principal parts sum exactly to the principal and the interest parts to the
  interest charged.
- **Periodic rate.** Periodic amounts use the nominal periodic rate
  ``annual_rate / periods_per_year`` (52 weekly, 26 biweekly, 12 monthly), whatever
  the calendar says: a schedule's amounts depend on the terms, the principal and the
  term only, never on the dates. The preview shown before approval and the schedule
  re-anchored to the disbursement date therefore have identical amounts. The
  product's day-count convention is used for interest between two dates
  (``accrued_interest``: accruals, payoff quotes), not for periodic amounts.
- **Declining balance, equal installments.** Standard annuity
  ``A = B * r / (1 - (1 + r) ** -m)`` over the ``m`` installments after the grace on
  principal, rounded half up; each installment's interest is ``balance * r``
  (rounded) and its principal ``A - interest``; the last installment repays the
  remaining balance with its interest.
- **Declining balance, equal principal.** ``principal / m`` per installment (rounded,
  the last absorbs the rest), interest on the outstanding balance.
- **Flat.** Interest ``principal * annual_rate * term / periods_per_year`` (rounded),
  spread evenly over the installments; principal spread evenly. The amortization
  choice makes no difference for flat interest (both give equal installments).
- **Grace on principal** (``grace_principal = g``): installments 1..g repay no
  principal (they pay interest only); the principal is amortized over the rest.
- **Grace on interest payment** (``grace_interest = h``): installments 1..h pay no
  interest. Interest is still charged for those periods; the total so deferred is
  spread evenly over installments h+1..n (last absorbs the remainder). Deferred
  interest is not capitalised (earns no interest).
- **Fees.** Fees charged at disbursement are due with the first installment (the
  payout always equals the principal); per-installment fees are due with every
  installment.
- **Dates.** Weekly +7 days, biweekly +14 days, monthly on the same day of the month
  as the start date, clamped to the month end: a start on 31 Jan gives 28/29 Feb,
  31 Mar, 30 Apr, ... (always anchored on the start date, so a short month does not
  drag the following ones).
- **Meeting weekday.** A weekly or biweekly product with ``meeting_weekday`` repays on
  that weekday: the first due date is the first such weekday at least one full period
  (7 or 14 days) after the start, then every 7 or 14 days.
- **Non-working days.** With a :class:`~services.loans.domain.calendar.WorkingCalendar`,
  each due date on a weekend or holiday moves by the product's ``non_working_day_rule``
  (next working day by default, previous, or unchanged). Each date is moved on its
  own: the unmoved dates stay the anchor, so a holiday never drags later installments.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, localcontext

from services.loans.domain.calendar import WorkingCalendar
from services.loans.domain.money import PRECISION, ZERO, round_money, spread
from services.loans.domain.products import (
    Amortization,
    DayCount,
    FeeTiming,
    Frequency,
    InterestMethod,
    ProductTerms,
)


@dataclass(frozen=True)
class PlannedInstallment:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees


def add_months(start: date, months: int) -> date:
    """``start`` moved by ``months`` calendar months, clamped to the month end."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def due_dates(frequency: Frequency, start: date, count: int, *,
              meeting_weekday: int | None = None) -> list[date]:
    """The ``count`` due dates of a schedule starting (disbursed) on ``start``, before any
    move off a non-working day."""
    if frequency is Frequency.MONTHLY:
        return [add_months(start, k) for k in range(1, count + 1)]
    step = timedelta(days=7 if frequency is Frequency.WEEKLY else 14)
    first = start + step
    if meeting_weekday is not None:
        first += timedelta(days=(meeting_weekday - first.weekday()) % 7)
    return [first + step * k for k in range(count)]


def scheduled_dates(terms: ProductTerms, start: date, count: int,
                    calendar: WorkingCalendar | None = None) -> list[date]:
    """The due dates of ``terms`` from ``start``: on the meeting weekday if the product has
    one, each moved off a non-working day by the product's rule when a calendar is given."""
    dates = due_dates(terms.frequency, start, count, meeting_weekday=terms.meeting_weekday)
    if calendar is None:
        return dates
    return [calendar.adjust(d, terms.non_working_day_rule) for d in dates]


def fees_at_disbursement(terms: ProductTerms, principal: Decimal) -> Decimal:
    """Fees charged at disbursement (due with the first installment)."""
    return sum(
        (f.amount(principal) for f in terms.fees if f.timing is FeeTiming.AT_DISBURSEMENT), ZERO
    )


def fees_per_installment(terms: ProductTerms, principal: Decimal) -> Decimal:
    return sum(
        (f.amount(principal) for f in terms.fees if f.timing is FeeTiming.PER_INSTALLMENT), ZERO
    )


def annuity_payment(balance: Decimal, rate: Decimal, periods: int) -> Decimal:
    """Equal payment repaying ``balance`` over ``periods`` at periodic ``rate``, rounded."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if rate == 0:
            return round_money(balance / periods)
        return round_money(balance * rate / (1 - (1 + rate) ** -periods))


def _declining_parts(
    terms: ProductTerms, principal: Decimal, term: int
) -> tuple[list[Decimal], list[Decimal]]:
    """Principal and interest charged per installment, on the outstanding balance."""
    rate = terms.periodic_rate
    amortizing = term - terms.grace_principal
    equal_principal = spread(principal, amortizing)
    payment = annuity_payment(principal, rate, amortizing)
    balance = principal
    principals: list[Decimal] = []
    interests: list[Decimal] = []
    for k in range(1, term + 1):
        interest = round_money(balance * rate)
        if k <= terms.grace_principal:
            part = ZERO
        elif k == term:
            part = balance
        elif terms.amortization is Amortization.EQUAL_INSTALLMENTS:
            part = payment - interest
        else:
            part = equal_principal[k - terms.grace_principal - 1]
        part = min(max(part, ZERO), balance)
        principals.append(part)
        interests.append(interest)
        balance -= part
    return principals, interests


def _flat_parts(
    terms: ProductTerms, principal: Decimal, term: int
) -> tuple[list[Decimal], list[Decimal]]:
    """Principal spread evenly after the grace on principal; the interest, computed on the
    original principal for the whole term, spread evenly after the grace on interest."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        total_interest = round_money(principal * terms.annual_rate * term / terms.periods_per_year)
    principals = [ZERO] * terms.grace_principal + spread(principal, term - terms.grace_principal)
    interests = [ZERO] * terms.grace_interest + spread(total_interest, term - terms.grace_interest)
    return principals, interests


def _defer_interest(interests: list[Decimal], grace: int) -> list[Decimal]:
    """Move the interest of the first ``grace`` installments onto the later ones."""
    if grace == 0:
        return interests
    deferred = sum(interests[:grace], ZERO)
    shares = spread(deferred, len(interests) - grace)
    return [ZERO] * grace + [i + s for i, s in zip(interests[grace:], shares, strict=True)]


def build_schedule(
    terms: ProductTerms, principal: Decimal, term: int, start: date,
    calendar: WorkingCalendar | None = None,
) -> list[PlannedInstallment]:
    """The installments of a loan of ``principal`` over ``term`` installments from ``start``.

    ``start`` is the disbursement date (or the application date for a preview); the
    amounts do not depend on it. The terms and the application are validated first.
    """
    terms.validate()
    terms.check_application(principal, term)
    if terms.interest_method is InterestMethod.FLAT:
        principals, interests = _flat_parts(terms, principal, term)
    else:
        principals, charged = _declining_parts(terms, principal, term)
        interests = _defer_interest(charged, terms.grace_interest)
    first_fees = fees_at_disbursement(terms, principal)
    each_fees = fees_per_installment(terms, principal)
    dates = scheduled_dates(terms, start, term, calendar)
    return [
        PlannedInstallment(
            number=k + 1,
            due_date=dates[k],
            principal=principals[k],
            interest=interests[k],
            fees=each_fees + (first_fees if k == 0 else ZERO),
        )
        for k in range(term)
    ]


def reanchor(
    schedule: Sequence[PlannedInstallment], frequency: Frequency, start: date
) -> list[PlannedInstallment]:
    """The same installments with due dates recomputed from a new start date."""
    dates = due_dates(frequency, start, len(schedule))
    return [replace(item, due_date=d) for item, d in zip(schedule, dates, strict=True)]


def reanchor_for(
    schedule: Sequence[PlannedInstallment], terms: ProductTerms, start: date,
    calendar: WorkingCalendar | None = None,
) -> list[PlannedInstallment]:
    """The same installments with the product's due dates from a new start date."""
    dates = scheduled_dates(terms, start, len(schedule), calendar)
    return [replace(item, due_date=d) for item, d in zip(schedule, dates, strict=True)]


def total_repayable(schedule: Sequence[PlannedInstallment]) -> Decimal:
    return sum((item.total for item in schedule), ZERO)


def total_interest(schedule: Sequence[PlannedInstallment]) -> Decimal:
    return sum((item.interest for item in schedule), ZERO)


def year_fraction(day_count: DayCount, start: date, end: date) -> Decimal:
    """Fraction of a year between two dates under a day-count convention.

    ``30_360`` is the US (NASD) 30/360 rule: day 31 counts as 30, and an end on the
    31st counts as 30 only when the start is on the 30th or 31st.
    """
    if day_count is DayCount.THIRTY_360:
        d1 = min(start.day, 30)
        d2 = 30 if end.day == 31 and d1 == 30 else end.day
        days = 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)
        return Decimal(days) / 360
    denominator = 365 if day_count is DayCount.ACTUAL_365 else 360
    return Decimal((end - start).days) / denominator


def accrued_interest(
    balance: Decimal, annual_rate: Decimal, day_count: DayCount, start: date, end: date
) -> Decimal:
    """Simple interest on ``balance`` between two dates, rounded half up to the cent."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return round_money(balance * annual_rate * year_fraction(day_count, start, end))
