"""Product validation, application ranges, due dates and day counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.loans.domain.products import (
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    Penalty,
    PenaltyKind,
    ProductTerms,
)
from services.loans.domain.schedule import accrued_interest, due_dates, year_fraction
from shared.errors import InvalidInput
from tests.unit.loans.helpers import product

D = Decimal


def terms() -> ProductTerms:
    t = replace(product(), min_principal=D("1000.00"), max_principal=D("20000.00"),
                min_term=3, max_term=24)
    t.validate()
    return t


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"annual_rate": D("-0.01")}, "annual_rate"),
        ({"annual_rate": D("24")}, "annual_rate"),
        ({"min_principal": D("0")}, "min_principal"),
        ({"min_principal": D("100.001")}, "min_principal"),
        ({"max_principal": D("999.99")}, "max_principal"),
        ({"min_term": 0}, "min_term"),
        ({"max_term": 2}, "max_term"),
        ({"grace_principal": 3}, "grace_principal"),
        ({"grace_principal": -1}, "grace_principal"),
        ({"grace_interest": 3}, "grace_interest"),
        ({"fees": (Fee(FeeKind.FLAT, D("-1"), FeeTiming.AT_DISBURSEMENT),)}, "fees[0].value"),
        ({"fees": (Fee(FeeKind.FLAT, D("1.00"), FeeTiming.AT_DISBURSEMENT),
                   Fee(FeeKind.PERCENT_OF_PRINCIPAL, D("2"), FeeTiming.PER_INSTALLMENT))},
         "fees[1].value"),
        ({"fees": (Fee(FeeKind.FLAT, D("1.005"), FeeTiming.AT_DISBURSEMENT),)}, "fees[0].value"),
        ({"penalty": Penalty(PenaltyKind.PERCENT_OF_OVERDUE, D("1.5"), 3)}, "penalty.value"),
        ({"penalty": Penalty(PenaltyKind.FLAT, D("10"), -1)}, "penalty.tolerance_days"),
        ({"allocation_order": ("principal", "interest", "fees")}, "allocation_order"),
        ({"allocation_order": ("fees", "fees", "interest", "principal")}, "allocation_order"),
        ({"overpayment_tolerance": D("-0.01")}, "overpayment_tolerance"),
    ],
)
def test_inconsistent_terms_are_refused_naming_the_field(
    changes: dict[str, object], field: str
) -> None:
    bad = replace(terms(), **changes)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as refused:
        bad.validate()
    assert refused.value.field == field


def test_a_sensible_product_with_every_option_is_accepted() -> None:
    replace(
        terms(), grace_principal=2, grace_interest=1, day_count=DayCount.THIRTY_360,
        fees=(Fee(FeeKind.PERCENT_OF_PRINCIPAL, D("0.02"), FeeTiming.AT_DISBURSEMENT),),
        penalty=Penalty(PenaltyKind.PERCENT_OF_OVERDUE, D("0.05"), 3),
        allocation_order=("principal", "interest", "fees", "penalties"),
        overpayment_tolerance=D("5.00"),
    ).validate()


@pytest.mark.parametrize(
    ("principal", "term", "field"),
    [
        ("999.99", 12, "principal"),
        ("20000.01", 12, "principal"),
        ("5000.005", 12, "principal"),
        ("-5000.00", 12, "principal"),
        ("5000.00", 2, "term"),
        ("5000.00", 25, "term"),
    ],
)
def test_application_outside_the_product_is_refused(principal: str, term: int,
                                                    field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        terms().check_application(D(principal), term)
    assert refused.value.field == field


@pytest.mark.parametrize(("principal", "term"), [("1000.00", 3), ("20000.00", 24)])
def test_application_at_the_bounds_is_accepted(principal: str, term: int) -> None:
    terms().check_application(D(principal), term)


def test_monthly_due_dates_keep_the_day_and_clamp_to_the_month_end() -> None:
    assert due_dates(Frequency.MONTHLY, date(2027, 1, 31), 4) == [
        date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]
    assert due_dates(Frequency.MONTHLY, date(2028, 1, 30), 2) == [
        date(2028, 2, 29), date(2028, 3, 30)]


def test_monthly_due_dates_cross_the_year() -> None:
    assert due_dates(Frequency.MONTHLY, date(2026, 11, 15), 3) == [
        date(2026, 12, 15), date(2027, 1, 15), date(2027, 2, 15)]


def test_weekly_and_biweekly_due_dates() -> None:
    assert due_dates(Frequency.WEEKLY, date(2026, 12, 24), 3) == [
        date(2026, 12, 31), date(2027, 1, 7), date(2027, 1, 14)]
    assert due_dates(Frequency.BIWEEKLY, date(2028, 2, 20), 2) == [
        date(2028, 3, 5), date(2028, 3, 19)]


def test_day_count_conventions() -> None:
    jan31, feb28 = date(2027, 1, 31), date(2027, 2, 28)
    assert year_fraction(DayCount.ACTUAL_365, jan31, feb28) == D(28) / 365
    assert year_fraction(DayCount.ACTUAL_360, jan31, feb28) == D(28) / 360
    assert year_fraction(DayCount.THIRTY_360, jan31, feb28) == D(28) / 360  # 31 counts as 30
    assert year_fraction(DayCount.THIRTY_360, date(2027, 1, 30), date(2027, 3, 31)) == D(60) / 360
    assert year_fraction(DayCount.THIRTY_360, date(2027, 1, 1), date(2028, 1, 1)) == 1
    assert year_fraction(DayCount.ACTUAL_365, date(2028, 1, 1), date(2029, 1, 1)) == D(366) / 365


def test_accrued_interest_uses_the_day_count_and_rounds_half_up() -> None:
    # 10 000 at 24 % for 30 days: 197.260273... (Actual/365) and 200.00 (Actual/360)
    start, end = date(2026, 4, 1), date(2026, 5, 1)
    assert accrued_interest(D("10000"), D("0.24"), DayCount.ACTUAL_365, start, end) == D("197.26")
    assert accrued_interest(D("10000"), D("0.24"), DayCount.ACTUAL_360, start, end) == D("200.00")
    # 1 000.50 at 1 % for 360 days on Actual/360: 10.005 exactly -> 10.01 (half up)
    year_end = date(2026, 12, 27)
    assert accrued_interest(D("1000.50"), D("0.01"), DayCount.ACTUAL_360, date(2026, 1, 1),
                            year_end) == D("10.01")
