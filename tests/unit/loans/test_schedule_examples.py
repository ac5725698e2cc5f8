"""Schedules checked against independently computed reference values.

The annuity is recomputed here with exact rational arithmetic from the closed
formula P * r / (1 - (1 + r) ** -n); flat and equal-principal examples are worked
out by hand in the comments.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from services.loans.domain.products import (
    Amortization,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
)
from services.loans.domain.schedule import (
    build_schedule,
    fees_at_disbursement,
    reanchor,
    total_interest,
    total_repayable,
)
from tests.unit.loans.helpers import cents, product

D = Decimal
PERIODS = {Frequency.WEEKLY: 52, Frequency.BIWEEKLY: 26, Frequency.MONTHLY: 12}
FLAT = InterestMethod.FLAT
EQUAL_PRINCIPAL = Amortization.EQUAL_PRINCIPAL


def half_up(x: Fraction) -> Decimal:
    """Exact rational rounded half up to the cent (x >= 0)."""
    hundredths = (x * 100 + Fraction(1, 2)).__floor__()
    return D(hundredths) / 100


def reference_annuity(principal: str, annual_rate: str, frequency: Frequency, n: int) -> Decimal:
    r = Fraction(annual_rate) / PERIODS[frequency]
    return half_up(Fraction(principal) * r / (1 - (1 + r) ** -n))


@pytest.mark.parametrize(
    ("frequency", "principal", "rate", "n"),
    [
        (Frequency.MONTHLY, "10000.00", "0.12", 12),
        (Frequency.MONTHLY, "25000.00", "0.18", 36),
        (Frequency.WEEKLY, "5000.00", "0.26", 26),
        (Frequency.WEEKLY, "1000.00", "0.52", 10),
        (Frequency.BIWEEKLY, "3000.00", "0.30", 13),
        (Frequency.MONTHLY, "777.77", "0.3517", 7),
    ],
)
def test_declining_equal_installments_follow_the_annuity_formula(
    frequency: Frequency, principal: str, rate: str, n: int
) -> None:
    schedule = build_schedule(product(frequency=frequency, rate=rate), D(principal), n,
                              date(2026, 3, 10))
    payment = reference_annuity(principal, rate, frequency, n)
    r = Fraction(rate) / PERIODS[frequency]

    assert [i.total for i in schedule[:-1]] == [payment] * (n - 1)
    balance = Fraction(principal)
    for item in schedule:  # each interest is the periodic rate on the balance still owed
        assert item.interest == half_up(balance * r)
        balance -= Fraction(item.principal)
    assert balance == 0
    # the last installment only differs from the others by accumulated cent roundings
    assert abs(schedule[-1].total - payment) <= D("0.01") * n


def test_textbook_loan_of_10000_at_12_percent_over_a_year_costs_888_49_a_month() -> None:
    schedule = build_schedule(product(), D("10000.00"), 12, date(2026, 1, 15))
    assert schedule[0].principal == D("788.49") and schedule[0].interest == D("100.00")
    assert schedule[-1].total == D("888.47")  # absorbs the roundings
    assert total_interest(schedule) == D("661.86")


def test_grace_on_principal_pays_interest_only_then_the_annuity_over_the_rest() -> None:
    schedule = build_schedule(product(grace_principal=2), D("10000.00"), 12, date(2026, 1, 15))
    # 10 000 * 1 % = 100.00 of interest a month while no principal is repaid
    assert [(i.principal, i.interest) for i in schedule[:2]] == [(D("0"), D("100.00"))] * 2
    payment = reference_annuity("10000.00", "0.12", Frequency.MONTHLY, 10)
    assert payment == D("1055.82")
    assert [i.total for i in schedule[2:-1]] == [payment] * 9
    assert sum(i.principal for i in schedule) == D("10000.00")


def test_grace_on_interest_defers_the_interest_charged_onto_the_later_installments() -> None:
    schedule = build_schedule(product(grace_interest=2), D("10000.00"), 12, date(2026, 1, 15))
    # interest charged: 100.00 then 1 % of (10000 - 788.49) = 92.1151 -> 92.12;
    # the 192.12 deferred is spread over the 10 later installments: 19.21 each, 19.23 last
    assert [(i.principal, i.interest) for i in schedule[:2]] == [
        (D("788.49"), D("0")), (D("796.37"), D("0"))]
    assert [i.total for i in schedule[2:-1]] == [D("907.70")] * 9
    plain = build_schedule(product(), D("10000.00"), 12, date(2026, 1, 15))
    assert [i.principal for i in schedule] == [i.principal for i in plain]
    assert total_interest(schedule) == total_interest(plain)  # deferred, not forgiven
    assert schedule[-1].interest == plain[-1].interest + D("19.23")


def test_weekly_product_with_grace_on_principal_and_on_interest() -> None:
    terms = product(frequency=Frequency.WEEKLY, rate="0.26", grace_principal=4, grace_interest=4)
    schedule = build_schedule(terms, D("2000.00"), 20, date(2026, 5, 4))
    # 4 weeks of payment holiday: 2000 * 0.005 = 10.00 charged each week, 40.00 deferred
    # over the 16 later installments = 2.50 each on top of the 16-week annuity
    assert [i.total for i in schedule[:4]] == [D("0")] * 4
    payment = reference_annuity("2000.00", "0.26", Frequency.WEEKLY, 16)
    assert [i.total for i in schedule[4:-1]] == [payment + D("2.50")] * 15
    assert [i.due_date for i in schedule[:2]] == [date(2026, 5, 11), date(2026, 5, 18)]
    assert total_interest(schedule) == sum(
        (half_up(Fraction(sum(i.principal for i in schedule[k:])) / 200) for k in range(20)),
        D("0"),
    )


def test_equal_principal_monthly_interest_on_the_declining_balance() -> None:
    schedule = build_schedule(product(amortization=EQUAL_PRINCIPAL), D("12000.00"), 12,
                              date(2026, 1, 1))
    # 1 000 a month; interest 1 % of 12 000, 11 000, ..., 1 000
    assert [i.principal for i in schedule] == [D("1000.00")] * 12
    assert [i.interest for i in schedule] == [D(10 * k) for k in range(12, 0, -1)]
    assert total_interest(schedule) == D("780.00")


def test_equal_principal_weekly_with_grace_on_principal() -> None:
    terms = product(amortization=EQUAL_PRINCIPAL, frequency=Frequency.WEEKLY, rate="0.26",
                    grace_principal=2)
    schedule = build_schedule(terms, D("5200.00"), 10, date(2026, 1, 1))
    # r = 0.005: 26.00 on 5 200 twice, then 650 a week and 0.005 of the balance
    assert [i.principal for i in schedule] == [D("0")] * 2 + [D("650.00")] * 8
    assert [i.interest for i in schedule] == [D(x) for x in (
        "26.00", "26.00", "26.00", "22.75", "19.50", "16.25", "13.00", "9.75", "6.50", "3.25")]


def test_equal_principal_with_rounding_leaves_the_remainder_to_the_last_installment() -> None:
    schedule = build_schedule(product(amortization=EQUAL_PRINCIPAL), D("1000.00"), 3,
                              date(2026, 1, 1))
    assert [i.principal for i in schedule] == [D("333.33"), D("333.33"), D("333.34")]
    # 1 % of 1000, of 666.67 (6.6667 -> 6.67), of 333.34 (3.3334 -> 3.33)
    assert [i.interest for i in schedule] == [D("10.00"), D("6.67"), D("3.33")]


@pytest.mark.parametrize("amortization", list(Amortization))
def test_flat_monthly_hand_computed(amortization: Amortization) -> None:
    schedule = build_schedule(product(FLAT, amortization, rate="0.24"), D("6000.00"), 12,
                              date(2026, 1, 1))
    # 6 000 * 24 % * 1 year = 1 440 of interest: 500 + 120 = 620 a month
    assert [(i.principal, i.interest, i.total) for i in schedule] == [
        (D("500.00"), D("120.00"), D("620.00"))] * 12


def test_flat_weekly_hand_computed() -> None:
    schedule = build_schedule(product(FLAT, frequency=Frequency.WEEKLY, rate="0.26"),
                              D("1000.00"), 10, date(2026, 1, 1))
    # 1 000 * 26 % * 10/52 years = 50.00: 100 + 5 a week
    assert [i.total for i in schedule] == [D("105.00")] * 10


def test_flat_with_rounding_remainders_on_the_last_installment() -> None:
    schedule = build_schedule(product(FLAT, rate="0.20"), D("1000.00"), 3, date(2026, 1, 1))
    # 1 000 * 20 % * 3/12 = 50.00 -> 16.67, 16.67, 16.66
    assert [i.interest for i in schedule] == [D("16.67"), D("16.67"), D("16.66")]
    assert [i.principal for i in schedule] == [D("333.33"), D("333.33"), D("333.34")]


def test_flat_weekly_with_grace_on_principal_and_interest() -> None:
    terms = product(FLAT, frequency=Frequency.WEEKLY, rate="0.26", grace_principal=2,
                    grace_interest=2)
    schedule = build_schedule(terms, D("1000.00"), 10, date(2026, 1, 1))
    # the same 50.00 of interest, paid over the 8 installments after the grace: 6.25 each;
    # principal 1 000 / 8 = 125
    assert [(i.principal, i.interest) for i in schedule] == (
        [(D("0"), D("0"))] * 2 + [(D("125.00"), D("6.25"))] * 8)


def test_flat_monthly_with_grace_on_principal_only_pays_interest_during_the_grace() -> None:
    schedule = build_schedule(product(FLAT, rate="0.24", grace_principal=3), D("6000.00"), 12,
                              date(2026, 1, 1))
    assert [i.total for i in schedule] == [D("120.00")] * 3 + [D("786.67")] * 8 + [D("786.64")]


def test_fees_at_disbursement_are_due_with_the_first_installment() -> None:
    fees = (Fee(FeeKind.PERCENT_OF_PRINCIPAL, D("0.02"), FeeTiming.AT_DISBURSEMENT),
            Fee(FeeKind.FLAT, D("10.00"), FeeTiming.PER_INSTALLMENT),
            Fee(FeeKind.FLAT, D("25.00"), FeeTiming.AT_DISBURSEMENT))
    terms = product(fees=fees)
    schedule = build_schedule(terms, D("5000.00"), 6, date(2026, 1, 1))
    no_fees = build_schedule(product(), D("5000.00"), 6, date(2026, 1, 1))
    # 2 % of 5 000 + 25 once, 10 on every installment; the payout stays the principal
    assert [i.fees for i in schedule] == [D("135.00")] + [D("10.00")] * 5
    assert fees_at_disbursement(terms, D("5000.00")) == D("125.00")
    assert sum(i.principal for i in schedule) == D("5000.00")
    assert [(i.principal, i.interest) for i in schedule] == [
        (i.principal, i.interest) for i in no_fees]
    assert total_repayable(schedule) == total_repayable(no_fees) + D("185.00")


def test_percent_fee_is_rounded_half_up() -> None:
    fee = Fee(FeeKind.PERCENT_OF_PRINCIPAL, D("0.015"), FeeTiming.PER_INSTALLMENT)
    schedule = build_schedule(product(fees=(fee,)), D("1233.00"), 2, date(2026, 1, 1))
    assert [i.fees for i in schedule] == [D("18.50")] * 2  # 18.495 -> 18.50


def test_interest_free_product_splits_the_principal() -> None:
    schedule = build_schedule(product(rate="0"), D("1000.00"), 3, date(2026, 1, 1))
    assert [(i.principal, i.interest) for i in schedule] == [
        (D("333.33"), D("0.00")), (D("333.33"), D("0.00")), (D("333.34"), D("0.00"))]


def test_single_installment_repays_everything_with_one_period_of_interest() -> None:
    schedule = build_schedule(product(frequency=Frequency.WEEKLY, rate="0.52"), D("500.00"), 1,
                              date(2026, 1, 1))
    assert [(i.principal, i.interest) for i in schedule] == [(D("500.00"), D("5.00"))]


def test_preview_and_disbursed_schedule_differ_only_by_dates() -> None:
    terms = product(frequency=Frequency.MONTHLY, grace_principal=1, grace_interest=1,
                    fees=(Fee(FeeKind.FLAT, D("50.00"), FeeTiming.AT_DISBURSEMENT),))
    preview = build_schedule(terms, D("8000.00"), 10, date(2026, 1, 20))
    disbursed = build_schedule(terms, D("8000.00"), 10, date(2026, 2, 3))
    strip = [(i.number, i.principal, i.interest, i.fees) for i in preview]
    assert strip == [(i.number, i.principal, i.interest, i.fees) for i in disbursed]
    assert disbursed[0].due_date == date(2026, 3, 3)
    assert reanchor(preview, Frequency.MONTHLY, date(2026, 2, 3)) == disbursed


def test_rounding_is_half_up_not_bankers() -> None:
    # 1 % of 1 250.50 = 12.505: half up gives 12.51 (banker's rounding would give 12.50)
    schedule = build_schedule(product(amortization=EQUAL_PRINCIPAL), D("1250.50"), 2,
                              date(2026, 1, 1))
    assert schedule[0].interest == cents("12.505") == D("12.51")
