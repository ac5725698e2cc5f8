"""Arrears ageing, penalties and portfolio at risk."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain.delinquency import (
    arrears_bucket,
    days_in_arrears,
    overdue_amount,
    par_ratio,
    penalty_for,
)
from services.loans.domain.products import Penalty, PenaltyKind
from tests.unit.loans.helpers import due

D = Decimal
JAN, FEB, MAR = date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15)


def test_nothing_overdue_before_or_on_the_due_date() -> None:
    dues = [due(1, JAN, "100"), due(2, FEB, "100")]
    assert days_in_arrears(dues, date(2026, 1, 10)) == 0
    assert days_in_arrears(dues, JAN) == 0  # due today is not yet late
    assert days_in_arrears(dues, date(2026, 1, 16)) == 1


def test_arrears_count_from_the_oldest_installment_still_owing() -> None:
    dues = [due(1, JAN, "0", "0"), due(2, FEB, "0", "5.00"), due(3, MAR, "100")]
    # January was paid; February still owes 5.00 of interest
    assert days_in_arrears(dues, date(2026, 3, 20)) == 33
    assert overdue_amount(dues, date(2026, 3, 20)) == D("105.00")
    assert overdue_amount(dues, date(2026, 3, 15)) == D("5.00")


def test_a_fully_repaid_loan_is_current() -> None:
    assert days_in_arrears([due(1, JAN), due(2, FEB)], date(2027, 1, 1)) == 0


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(0, "current"), (1, "1-30"), (30, "1-30"), (31, "31-60"), (60, "31-60"), (61, "61-90"),
     (90, "61-90"), (91, "90+"), (3650, "90+")],
)
def test_arrears_buckets(days: int, bucket: str) -> None:
    assert arrears_bucket(days) == bucket


def test_negative_days_have_no_bucket() -> None:
    with pytest.raises(ValueError):
        arrears_bucket(-1)


def test_flat_penalty_after_the_tolerance() -> None:
    penalty = Penalty(PenaltyKind.FLAT, D("50.00"), tolerance_days=3)
    assert penalty_for(penalty, D("440.00"), 3) == 0
    assert penalty_for(penalty, D("440.00"), 4) == D("50.00")
    assert penalty_for(penalty, D("0"), 10) == 0  # nothing overdue, nothing charged


def test_percent_penalty_on_the_overdue_amount_rounded_half_up() -> None:
    penalty = Penalty(PenaltyKind.PERCENT_OF_OVERDUE, D("0.05"), tolerance_days=0)
    assert penalty_for(penalty, D("440.00"), 1) == D("22.00")
    assert penalty_for(penalty, D("10.10"), 1) == D("0.51")  # 0.505 -> 0.51
    assert penalty_for(penalty, D("440.00"), 0) == 0


@given(
    st.sampled_from(PenaltyKind),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4),
    st.integers(min_value=0, max_value=60),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2),
    st.integers(min_value=0, max_value=400),
)
def test_penalty_is_zero_within_tolerance_and_never_negative(
    kind: PenaltyKind, value: Decimal, tolerance: int, overdue: Decimal, days: int
) -> None:
    charged = penalty_for(Penalty(kind, value, tolerance), overdue, days)
    assert charged >= 0 and charged == charged.quantize(D("0.01"))
    if days <= tolerance:
        assert charged == 0
    if kind is PenaltyKind.PERCENT_OF_OVERDUE:
        assert charged <= overdue


def test_par_counts_loans_strictly_beyond_the_threshold() -> None:
    portfolio = [(D("1000.00"), 0), (D("500.00"), 30), (D("300.00"), 31), (D("200.00"), 95)]
    assert par_ratio(portfolio, 30) == D("0.2500")  # (300 + 200) / 2000
    assert par_ratio(portfolio, 90) == D("0.1000")
    assert par_ratio(portfolio, 1) == D("0.5000")


def test_par_is_rounded_to_four_decimals() -> None:
    assert par_ratio([(D("1"), 5), (D("2"), 0)], 1) == D("0.3333")
    assert par_ratio([(D("2"), 5), (D("1"), 0)], 1) == D("0.6667")


def test_par_of_an_empty_portfolio_is_zero() -> None:
    assert par_ratio([], 30) == D("0.0000")
    assert par_ratio(iter([(D("0"), 40)]), 30) == D("0.0000")
