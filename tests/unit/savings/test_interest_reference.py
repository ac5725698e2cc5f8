"""Reference cases for savings interest, with the working written out.

Conventions (services/savings/domain/interest.py): a day earns balance * rate / N, N the
days of that day's year; each day's accrual is kept to 10 decimals (half up); a posting
credits accrued + carried rounded DOWN to the centime and carries the rest; the
withholding tax is gross * rate, half up to the centime.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from services.savings.domain import interest as i


def jan_2025() -> list[tuple[dt.date, D]]:
    """10 000.00 from 1 January, 15 000.00 from 11 January (a 5 000.00 deposit)."""
    return [(d, D("10000.00") if d.day <= 10 else D("15000.00"))
            for d in i.days(dt.date(2025, 1, 1), dt.date(2025, 1, 31))]


def test_daily_balance_monthly_posting_with_withholding_tax() -> None:
    # 3.6 % a year, 2025 has 365 days:
    #   10 000 * 0.036 / 365 = 0.98630136986..  -> 0.9863013699 a day, days 1-10
    #   15 000 * 0.036 / 365 = 1.47945205479..  -> 1.4794520548 a day, days 11-31 (21)
    #   accrued = 10 * 0.9863013699 + 21 * 1.4794520548 = 9.863013699 + 31.0684931508
    #           = 40.9315068498
    #   gross = 40.93 (down to the centime), carried = 0.0015068498
    #   tax 20 % = 40.93 * 0.20 = 8.186 -> 8.19 (half up); net 32.74
    assert i.daily_interest(D("10000.00"), D("0.036"), dt.date(2025, 1, 1)) == D("0.9863013699")
    assert i.daily_interest(D("15000.00"), D("0.036"), dt.date(2025, 1, 1)) == D("1.4794520548")
    accrued = i.accrue_daily_balance(jan_2025(), D("0.036"))
    assert accrued == D("40.9315068498")
    posting = i.post(accrued, D(0), D("0.20"))
    assert (posting.gross, posting.withholding_tax, posting.net, posting.carried) == (
        D("40.93"), D("8.19"), D("32.74"), D("0.0015068498"))


def test_the_rounding_residue_is_carried_to_the_next_posting() -> None:
    # February 2025, 15 000.00 all month: 28 * 1.4794520548 = 41.4246575344
    #   + January's carried 0.0015068498 = 41.4261643842
    #   gross 41.42, carried 0.0061643842; tax 41.42 * 0.20 = 8.284 -> 8.28
    jan = i.post(i.accrue_daily_balance(jan_2025(), D("0.036")), D(0), D("0.20"))
    feb = [(d, D("15000.00")) for d in i.days(dt.date(2025, 2, 1), dt.date(2025, 2, 28))]
    accrued = i.accrue_daily_balance(feb, D("0.036"))
    assert accrued == D("41.4246575344")
    posting = i.post(accrued, jan.carried, D("0.20"))
    assert (posting.gross, posting.withholding_tax, posting.carried) == (
        D("41.42"), D("8.28"), D("0.0061643842"))
    # nothing lost: what was posted plus what is carried is exactly what accrued
    assert jan.gross + posting.gross + posting.carried == (
        i.accrue_daily_balance(jan_2025(), D("0.036")) + accrued)


def test_minimum_balance_of_the_period() -> None:
    # Same January, minimum-balance basis: the lowest closing balance is 10 000.00, and
    # every one of the 31 days earns on it: 31 * 0.9863013699 = 30.5753424669
    #   gross 30.57, carried 0.0053424669, tax 30.57 * 0.20 = 6.114 -> 6.11
    accrued = i.accrue_minimum_balance(jan_2025(), D("0.036"))
    assert accrued == D("30.5753424669")
    posting = i.post(accrued, D(0), D("0.20"))
    assert (posting.gross, posting.withholding_tax, posting.carried) == (
        D("30.57"), D("6.11"), D("0.0053424669"))


def test_quarterly_posting() -> None:
    # 10 000.00 at 3.65 % in 2025: 10 000 * 0.0365 / 365 = 1.0000000000 a day exactly.
    # Q1 = 31 + 28 + 31 = 90 days -> 90.00; the months between are not period ends.
    q1 = [(d, D("10000.00")) for d in i.days(dt.date(2025, 1, 1), dt.date(2025, 3, 31))]
    assert len(q1) == 90
    assert i.accrue_daily_balance(q1, D("0.0365")) == D("90.0000000000")
    assert not i.is_period_end(dt.date(2025, 1, 31), "quarterly")
    assert not i.is_period_end(dt.date(2025, 2, 28), "quarterly")
    assert i.is_period_end(dt.date(2025, 3, 31), "quarterly")
    assert i.is_period_end(dt.date(2025, 2, 28), "monthly")
    assert not i.is_period_end(dt.date(2024, 2, 28), "monthly")   # 2024 has a 29th
    assert i.period_start(dt.date(2025, 8, 31), "quarterly") == dt.date(2025, 7, 1)
    # tax 15 %: 90.00 * 0.15 = 13.50; net 76.50
    posting = i.post(D("90.0000000000"), D(0), D("0.15"))
    assert (posting.gross, posting.withholding_tax, posting.net) == (
        D("90.00"), D("13.50"), D("76.50"))


def test_a_leap_year_divides_by_366() -> None:
    # 10 000.00 at 3.66 %: in 2024 a day earns 10 000 * 0.0366 / 366 = 1.0000000000,
    # February 2024 has 29 days -> 29.00; the whole of 2024 earns 366.00 = 10 000 * 3.66 %.
    # In 2025 the same day earns 10 000 * 0.0366 / 365 = 1.0027397260.
    feb = [(d, D("10000.00")) for d in i.days(dt.date(2024, 2, 1), dt.date(2024, 2, 29))]
    assert i.accrue_daily_balance(feb, D("0.0366")) == D("29.0000000000")
    year = [(d, D("10000.00")) for d in i.days(dt.date(2024, 1, 1), dt.date(2024, 12, 31))]
    assert i.accrue_daily_balance(year, D("0.0366")) == D("366.0000000000")
    assert i.daily_interest(D("10000.00"), D("0.0366"), dt.date(2025, 2, 1)) == D("1.0027397260")
    assert i.is_period_end(dt.date(2024, 2, 29), "monthly")


def test_term_deposit_interest_across_a_leap_year_and_an_early_break() -> None:
    # 10 000.00 for 12 months at 4 % from 15 March 2024: maturity 15 March 2025.
    #   15 Mar - 31 Dec 2024: 292 days * (10 000 * 0.04 / 366 = 1.0928961749) = 319.1256830708
    #   1 Jan - 14 Mar 2025:   73 days * (10 000 * 0.04 / 365 = 1.0958904110) =  80.0000000030
    #   399.1256830738 -> 399.12
    start = dt.date(2024, 3, 15)
    assert i.add_months(start, 12) == dt.date(2025, 3, 15)
    assert i.term_interest(D("10000.00"), D("0.04"), start, dt.date(2025, 3, 15)) == D("399.12")
    # Broken on 15 June 2024 with a 1 % penalty: 92 days at 3 %:
    #   10 000 * 0.03 / 366 = 0.8196721311 a day, * 92 = 75.4098360612 -> 75.40
    assert i.early_break_interest(D("10000.00"), D("0.04"), D("0.01"), start,
                                  dt.date(2024, 6, 15)) == D("75.40")


@pytest.mark.parametrize(("day", "months", "expected"), [
    (dt.date(2024, 1, 31), 1, dt.date(2024, 2, 29)),
    (dt.date(2025, 1, 31), 1, dt.date(2025, 2, 28)),
    (dt.date(2024, 11, 30), 3, dt.date(2025, 2, 28)),
])
def test_months_end_on_the_months_last_day(day: dt.date, months: int, expected: dt.date
                                           ) -> None:
    assert i.add_months(day, months) == expected


def test_dormancy_starts_the_day_after_the_months_without_a_client_transaction() -> None:
    assert i.dormant_since(dt.date(2024, 3, 31), 12) == dt.date(2025, 4, 1)


def test_nothing_accrues_on_an_empty_account_and_nothing_is_posted() -> None:
    assert i.daily_interest(D(0), D("0.05"), dt.date(2025, 1, 1)) == 0
    posting = i.post(D(0), D("0.004"), D("0.2"))
    assert (posting.gross, posting.withholding_tax, posting.carried) == (D(0), D(0), D("0.004"))
