"""Servicing reference values worked by hand (payoff, early settlement, prepayment, TEG,
holidays, meeting weekdays, restructuring). The working is in the comments; the
annuities are recomputed with exact fractions, the TEG by Newton's method in floats
(the service uses bisection in decimals)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from services.loans.domain.allocation import InstallmentDue, allocate
from services.loans.domain.calendar import WorkingCalendar, seed_holidays
from services.loans.domain.payoff import compute_payoff, owed
from services.loans.domain.pricing import price
from services.loans.domain.products import (
    Amortization,
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
    NonWorkingDayRule,
    PrepaymentRule,
    ProductTerms,
)
from services.loans.domain.rescheduling import (
    RestructureTerms,
    rebuild_after_prepayment,
    restructure,
)
from services.loans.domain.schedule import build_schedule
from tests.unit.loans.helpers import product

D = Decimal
ZERO = D("0.00")
D0 = date(2026, 1, 5)  # a Monday; due 5 Feb, 5 Mar, 5 Apr, 5 May (no calendar)


@dataclass
class Row:
    """An installment as stored (due and paid)."""

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal
    penalties_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fees_paid: Decimal = ZERO
    penalties_paid: Decimal = ZERO
    status: str = "pending"


def rows(terms: ProductTerms, principal: str = "1200.00", term: int = 4) -> list[Row]:
    return [Row(p.number, p.due_date, p.principal, p.interest, p.fees)
            for p in build_schedule(terms, D(principal), term, D0)]


def half_up(x: Fraction) -> Decimal:
    return D((x * 100 + Fraction(1, 2)).__floor__()) / 100


FLAT_12 = product(InterestMethod.FLAT, rate="0.12")
DECLINING_24 = product(rate="0.24")
EQUAL_PRINCIPAL_18_FEE = product(
    amortization=Amortization.EQUAL_PRINCIPAL, rate="0.18",
    fees=(Fee(FeeKind.PERCENT_OF_PRINCIPAL, D("0.01"), FeeTiming.AT_DISBURSEMENT),))


# Payoff on 2 Mar 2026: installment 1 (due 5 Feb) unpaid, the current period runs from
# 5 Feb: 25 actual days; 30/360 counts (3 - 2) * 30 + (2 - 5) = 27 days.
#
# flat 12 %, 1200 over 4: 300 + 12 a month; interest accrues on the original 1200:
#   actual/365: 1200 * 0.12 * 25 / 365 = 9.863 -> 9.86; actual/360: 10.00;
#   30/360: 1200 * 0.12 * 27 / 360 = 10.80. payoff = 1200 + 12 (inst. 1) + accrued.
# declining 24 % (annuity 315.15, inst. 1 interest 24.00), on the 1200 outstanding:
#   actual/365: 1200 * 0.24 * 25 / 365 = 19.726 -> 19.73; actual/360: 20.00;
#   30/360: 1200 * 0.24 * 27 / 360 = 21.60. payoff = 1200 + 24 + accrued.
# equal principal 18 % + 1 % fee at disbursement (12.00 with inst. 1, interest 18.00):
#   actual/365: 1200 * 0.18 * 25 / 365 = 14.795 -> 14.79; actual/360: 15.00;
#   30/360: 1200 * 0.18 * 27 / 360 = 16.20. payoff = 1200 + 18 + 12 + accrued.
@pytest.mark.parametrize(("terms", "due_interest", "fees", "accrued"), [
    (FLAT_12, "12.00", "0.00", {"actual_365": "9.86", "actual_360": "10.00",
                                "30_360": "10.80"}),
    (DECLINING_24, "24.00", "0.00", {"actual_365": "19.73", "actual_360": "20.00",
                                     "30_360": "21.60"}),
    (EQUAL_PRINCIPAL_18_FEE, "18.00", "12.00", {"actual_365": "14.79", "actual_360": "15.00",
                                                "30_360": "16.20"}),
])
@pytest.mark.parametrize("day_count", list(DayCount))
def test_payoff_on_three_products_and_three_day_counts(
        terms: ProductTerms, due_interest: str, fees: str, accrued: dict[str, str],
        day_count: DayCount) -> None:
    terms = replace(terms, day_count=day_count)
    items = rows(terms)
    quote = compute_payoff(items, terms, loan_principal=D("1200.00"), disbursed_on=D0,
                           as_of=date(2026, 3, 2))
    interest = D(due_interest) + D(accrued[day_count.value])
    scheduled_interest = sum((r.interest_due for r in items), ZERO)
    assert (quote.principal, quote.interest, quote.fees, quote.penalties) == (
        D("1200.00"), interest, D(fees), ZERO)
    assert quote.total == D("1200.00") + interest + D(fees)
    assert quote.interest_waived == scheduled_interest - interest
    assert quote.accrued_from == date(2026, 2, 5)


def test_early_settlement_waives_the_interest_not_earned() -> None:
    # flat 12 %: installment 1 (312.00) paid on 5 Feb; settled on 2 Mar:
    # 900 principal + 1200 * 0.12 * 25 / 365 = 9.86 accrued = 909.86;
    # interest waived = 3 * 12 - 9.86 = 26.14.
    items = rows(FLAT_12)
    first = items[0]
    first.principal_paid, first.interest_paid, first.status = D("300.00"), D("12.00"), "paid"
    quote = compute_payoff(items, FLAT_12, loan_principal=D("1200.00"), disbursed_on=D0,
                           as_of=date(2026, 3, 2))
    assert quote.total == D("909.86") and quote.interest_waived == D("26.14")
    paid = allocate(list(quote.settlement), quote.total)
    assert paid.unallocated == 0 and all(r.total == 0 for r in paid.remaining)
    assert (paid.principal_paid, paid.interest_paid) == (D("900.00"), D("9.86"))


def _future(terms: ProductTerms) -> list[InstallmentDue]:
    """What installments 2-4 owe once installment 1 is paid."""
    return [owed(r) for r in rows(terms)[1:]]


def test_partial_prepayment_reduce_installment() -> None:
    # declining 24 %, installment 1 paid: 1200 - 291.15 = 908.85 left over installments
    # 2-4. 300.00 prepaid -> 608.85 re-amortised over the same 3 installments at 2 %:
    # A = 608.85 * 0.02 / (1 - 1.02^-3) (exact below); interest on the balance each month.
    future = _future(DECLINING_24)
    assert sum(f.principal for f in future) == D("908.85")
    new = rebuild_after_prepayment(DECLINING_24, future, D("300.00"),
                                   PrepaymentRule.REDUCE_INSTALLMENT)
    r = Fraction(2, 100)
    payment = half_up(Fraction("608.85") * r / (1 - (1 + r) ** -3))
    balance, expected = D("608.85"), []
    for k in range(3):
        interest = half_up(Fraction(balance) * r)
        part = balance if k == 2 else payment - interest
        expected.append((part, interest))
        balance -= part
    assert [(n.principal, n.interest) for n in new] == expected
    # 608.85 * 0.3467547 = 211.1216 -> 211.12; first: 12.18 interest, 198.94 principal
    assert payment == D("211.12") and expected[0] == (D("198.94"), D("12.18"))
    assert [n.due_date for n in new] == [f.due_date for f in future]


def test_partial_prepayment_reduce_term() -> None:
    # Same loan, same 300.00; the installment stays 315.15 (296.97 + 18.18):
    # 608.85: interest 12.18 (608.85 * 0.02 = 12.177), principal 315.15 - 12.18 = 302.97;
    # 305.88 left: interest 6.12 (6.1176), principal min(309.03, 305.88) = 305.88 -> repaid:
    # the last installment drops.
    new = rebuild_after_prepayment(DECLINING_24, _future(DECLINING_24), D("300.00"),
                                   PrepaymentRule.REDUCE_TERM)
    assert [(n.principal, n.interest) for n in new] == [
        (D("302.97"), D("12.18")), (D("305.88"), D("6.12")), (ZERO, ZERO)]
    # flat 12 %: 3 x (300 + 12) left; 300 prepaid -> two installments of 300 + 12, the
    # third (and its 12.00 of interest) drops.
    flat = rebuild_after_prepayment(FLAT_12, _future(FLAT_12), D("300.00"),
                                    PrepaymentRule.REDUCE_TERM)
    assert [(n.principal, n.interest) for n in flat] == [
        (D("300.00"), D("12.00")), (D("300.00"), D("12.00")), (ZERO, ZERO)]


def _newton_irr(flows: list[float]) -> float:
    """Spreadsheet IRR: NPV(r) = sum(c_k / (1 + r)^k) = 0, by Newton from 1 %."""
    rate = 0.01
    for _ in range(100):
        npv = sum(c / (1 + rate) ** k for k, c in enumerate(flows))
        slope = sum(-k * c / (1 + rate) ** (k + 1) for k, c in enumerate(flows))
        rate -= npv / slope
    return rate


def test_teg_of_a_flat_product_with_a_fee() -> None:
    # 1200 paid out; 24.00 fee due with installment 1: 336, 312, 312, 312.
    # =IRR({-1200; 336; 312; 312; 312}) * 12 = 0.288027 (28.80 %); cost 48 + 24 = 72.
    terms = replace(FLAT_12, fees=(Fee(FeeKind.FLAT, D("24.00"), FeeTiming.AT_DISBURSEMENT),))
    schedule = build_schedule(terms, D("1200.00"), 4, D0)
    assert [p.total for p in schedule] == [D("336.00"), D("312.00"), D("312.00"), D("312.00")]
    cost = price(D("1200.00"), [p.total for p in schedule], 12)
    expected = _newton_irr([-1200, 336, 312, 312, 312]) * 12
    assert abs(float(cost.teg) - expected) < 0.0001
    assert abs(float(cost.teg) - 0.288027) < 0.0001
    assert cost.total_cost_of_credit == D("72.00")


def test_teg_of_a_declining_product() -> None:
    # 24 % declining, 1200 over 4: 315.15 x 3 + 315.15 (the last absorbs the rounding)
    # =RATE(4; -315.15; 1200) * 12 = 0.240 within 0.01 % (the rounded-up annuity makes
    # it a hair above the nominal 24 %).
    schedule = build_schedule(DECLINING_24, D("1200.00"), 4, D0)
    totals = [p.total for p in schedule]
    cost = price(D("1200.00"), totals, 12)
    expected = _newton_irr([-1200.0, *[float(t) for t in totals]]) * 12
    assert abs(float(cost.teg) - expected) < 0.0001
    assert abs(float(cost.teg) - 0.24) < 0.001
    assert cost.total_cost_of_credit == sum(totals, ZERO) - D("1200.00")


CALENDAR = WorkingCalendar(holidays=frozenset(h.day for h in seed_holidays()))


def test_a_due_date_on_a_holiday_moves_by_the_product_rule() -> None:
    # from 27 Apr 2026: 27 May and 28 May are Aïd al-Adha -> next: Fri 29 May;
    # previous: Tue 26 May; unchanged: 27 May. 27 Jun is a Saturday -> Mon 29 Jun /
    # Fri 26 Jun. 27 Jul (Mon) stays.
    start = date(2026, 4, 27)
    expected = {
        NonWorkingDayRule.NEXT: [date(2026, 5, 29), date(2026, 6, 29), date(2026, 7, 27)],
        NonWorkingDayRule.PREVIOUS: [date(2026, 5, 26), date(2026, 6, 26), date(2026, 7, 27)],
        NonWorkingDayRule.UNCHANGED: [date(2026, 5, 27), date(2026, 6, 27), date(2026, 7, 27)],
    }
    plain = build_schedule(DECLINING_24, D("1200.00"), 3, start)
    for rule, dates in expected.items():
        terms = replace(DECLINING_24, non_working_day_rule=rule)
        moved = build_schedule(terms, D("1200.00"), 3, start, CALENDAR)
        assert [p.due_date for p in moved] == dates, rule
        # amounts never depend on the dates
        assert [(p.principal, p.interest) for p in moved] == [
            (p.principal, p.interest) for p in plain]


def test_a_weekly_product_repays_on_its_meeting_weekday() -> None:
    # Disbursed Thursday 8 Jan 2026, the group meets on Tuesdays (1): the first Tuesday at
    # least a week on is 20 Jan, then every 7 days. Biweekly: 27 Jan, then every 14 days.
    weekly = product(frequency=Frequency.WEEKLY, rate="0.26")
    weekly = replace(weekly, meeting_weekday=1)
    dates = [p.due_date for p in build_schedule(weekly, D("1000.00"), 4, date(2026, 1, 8),
                                                CALENDAR)]
    assert dates == [date(2026, 1, 20), date(2026, 1, 27), date(2026, 2, 3), date(2026, 2, 10)]
    assert all(d.weekday() == 1 for d in dates)
    biweekly = replace(weekly, frequency=Frequency.BIWEEKLY)
    assert [p.due_date for p in build_schedule(biweekly, D("1000.00"), 2, date(2026, 1, 8))
            ] == [date(2026, 1, 27), date(2026, 2, 10)]


def test_restructuring_with_a_moratorium_capitalised_or_not() -> None:
    # Declining 24 %, installment 1 paid: 908.85 left, restructured on 5 Feb 2026 with a
    # 2-month moratorium, then 3 installments.
    # not capitalised: moratorium interest 2 x 18.18 (908.85 * 0.02 = 18.177) = 36.36,
    #   spread over the 3 installments (12.12 each) on top of the annuity's interest;
    # capitalised: 908.85 + 18.18 = 927.03, + 18.54 (927.03 * 0.02 = 18.5406) = 945.57.
    owed = _future(DECLINING_24)
    plain = restructure(DECLINING_24, owed, date(2026, 2, 5),
                        RestructureTerms(term=3, moratorium=2), loan_principal=D("1200.00"))
    assert plain.moratorium_interest == D("36.36") and plain.capitalised_interest == ZERO
    assert sum(r.principal for r in plain.installments) == D("908.85")
    r = Fraction(2, 100)
    annuity_interest = half_up(Fraction("908.85") * r)
    assert plain.installments[0].interest == annuity_interest + D("12.12")
    # first due date after two periods with nothing to pay: 5 May (5 Mar, 5 Apr skipped)
    assert [i.due_date for i in plain.installments] == [
        date(2026, 5, 5), date(2026, 6, 5), date(2026, 7, 5)]
    capital = restructure(DECLINING_24, owed, date(2026, 2, 5),
                          RestructureTerms(term=3, moratorium=2, capitalise_interest=True),
                          loan_principal=D("1200.00"))
    assert capital.capitalised_interest == D("36.72")
    assert capital.principal_after == D("945.57")
    assert sum(r.principal for r in capital.installments) == D("945.57")
