"""Repayment allocation: worked examples and invariants."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain.allocation import (
    AllocationResult,
    InstallmentDue,
    Rejection,
    allocate,
    decide_repayment,
    next_due,
    outstanding_principal,
    total_owed,
)
from services.loans.domain.products import COMPONENTS, Component
from services.loans.domain.schedule import build_schedule
from shared.errors import InvalidInput
from tests.unit.loans.helpers import due, product

D = Decimal
JAN, FEB, MAR = date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15)


def schedule_dues() -> list[InstallmentDue]:
    """Three monthly installments of 400 principal + 40 interest + 10 fees."""
    return [due(k, d, "400.00", "40.00", "10.00") for k, d in ((1, JAN), (2, FEB), (3, MAR))]


def lines(result: AllocationResult) -> list[tuple[int, str, Decimal]]:
    return [(ln.installment, ln.component, ln.amount) for ln in result.lines]


def test_partial_payment_covers_fees_then_interest_then_part_of_the_principal() -> None:
    result = allocate(schedule_dues(), D("150.00"), as_of=JAN)
    assert lines(result) == [(1, "fees", D("10.00")), (1, "interest", D("40.00")),
                             (1, "principal", D("100.00"))]
    assert (result.principal_paid, result.interest_paid, result.fees_paid,
            result.penalties_paid, result.unallocated) == (
        D("100.00"), D("40.00"), D("10.00"), D("0"), D("0"))
    first = result.remaining[0]
    assert (first.principal, first.interest, first.fees) == (D("300.00"), D("0"), D("0"))
    assert result.remaining[1:] == schedule_dues()[1:]
    assert result.paid_in_advance == 0


def test_exact_payment_settles_the_installment_and_the_next_one_is_due() -> None:
    result = allocate(schedule_dues(), D("450.00"), as_of=JAN)
    assert result.remaining[0].total == 0 and result.unallocated == 0
    assert next_due(result.remaining) == schedule_dues()[1]
    assert total_owed(result.remaining) == D("900.00")


def test_early_payment_runs_on_into_future_installments() -> None:
    result = allocate(schedule_dues(), D("700.00"), as_of=JAN)
    assert lines(result)[3:] == [(2, "fees", D("10.00")), (2, "interest", D("40.00")),
                                 (2, "principal", D("200.00"))]
    assert result.paid_in_advance == D("250.00")  # installment 2 is not due until February
    assert outstanding_principal(result.remaining) == D("600.00")


def test_late_payment_pays_the_penalty_and_the_oldest_installment_first() -> None:
    dues = [due(3, MAR, "400", "40", "10"), due(2, FEB, "400", "40", "10", "25.00"),
            due(1, JAN, "0", "0", "0")]  # given in any order; January already settled
    result = allocate(dues, D("500.00"), as_of=date(2026, 3, 20))
    assert lines(result) == [
        (2, "penalties", D("25.00")), (2, "fees", D("10")), (2, "interest", D("40")),
        (2, "principal", D("400")), (3, "fees", D("10")), (3, "interest", D("15.00"))]
    assert result.penalties_paid == D("25.00")
    assert [i.number for i in result.remaining] == [3, 2, 1]  # the order given is kept


def test_payment_beyond_what_is_owed_leaves_the_excess_unallocated() -> None:
    result = allocate(schedule_dues(), D("1400.00"))
    assert result.allocated == D("1350.00") and result.unallocated == D("50.00")
    assert total_owed(result.remaining) == 0
    assert next_due(result.remaining) is None


def test_another_order_puts_principal_first() -> None:
    order: tuple[Component, ...] = ("principal", "interest", "fees", "penalties")
    result = allocate([due(1, JAN, "100", "20", "5", "3")], D("110.00"), order)
    assert lines(result) == [(1, "principal", D("100")), (1, "interest", D("10.00"))]


def test_the_installments_given_are_not_modified() -> None:
    dues = schedule_dues()
    allocate(dues, D("1000.00"))
    assert dues == schedule_dues()


def test_installments_due_the_same_day_are_paid_in_number_order() -> None:
    result = allocate([due(2, JAN, "50"), due(1, JAN, "50")], D("60.00"))
    assert lines(result) == [(1, "principal", D("50")), (2, "principal", D("10.00"))]


@pytest.mark.parametrize("amount", ["-1.00", "1.001", "NaN"])
def test_malformed_amounts_are_refused(amount: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        allocate(schedule_dues(), D(amount))
    assert refused.value.field == "amount"


def test_an_order_missing_a_component_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        allocate(schedule_dues(), D("1.00"), ("interest", "principal", "fees"))
    assert refused.value.field == "allocation_order"


def test_overpayment_beyond_tolerance_rejects_the_whole_payment() -> None:
    outcome = decide_repayment(schedule_dues(), D("1355.01"), tolerance=D("5.00"))
    assert isinstance(outcome, Rejection)
    assert outcome.reason == "overpayment" and outcome.refundable_amount == D("1355.01")
    assert "1350.00" in outcome.detail


def test_overpayment_within_tolerance_is_applied_and_the_excess_reported() -> None:
    outcome = decide_repayment(schedule_dues(), D("1355.00"), tolerance=D("5.00"))
    assert isinstance(outcome, AllocationResult)
    assert outcome.allocated == D("1350.00") and outcome.unallocated == D("5.00")


def test_a_payment_on_a_repaid_loan_is_an_overpayment() -> None:
    settled = [due(1, JAN)]
    assert isinstance(decide_repayment(settled, D("10.00"), tolerance=D("0")), Rejection)


def test_zero_payment_is_refused_by_decide() -> None:
    with pytest.raises(InvalidInput):
        decide_repayment(schedule_dues(), D("0.00"))


def test_the_disbursed_schedule_can_be_repaid_to_the_cent() -> None:
    schedule = build_schedule(product(), D("10000.00"), 12, JAN)
    dues = [InstallmentDue.from_planned(p) for p in schedule]
    total = total_owed(dues)
    outcome = decide_repayment(dues, total)
    assert isinstance(outcome, AllocationResult)
    assert outcome.principal_paid == D("10000.00") and outcome.unallocated == 0
    assert total_owed(outcome.remaining) == 0


# --- invariants ---------------------------------------------------------------------

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("2000"), places=2)


@st.composite
def installments(draw: st.DrawFn) -> list[InstallmentDue]:
    count = draw(st.integers(min_value=0, max_value=8))
    offsets = draw(st.lists(st.integers(min_value=0, max_value=400), min_size=count,
                            max_size=count))
    dues = [InstallmentDue(k + 1, date(2026, 1, 1) + timedelta(days=offsets[k]),
                           draw(money), draw(money), draw(money), draw(money))
            for k in range(count)]
    return draw(st.permutations(dues))


orders = st.permutations(COMPONENTS)
amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("20000"), places=2)


@settings(max_examples=400, deadline=None)
@given(installments(), amounts, orders)
def test_allocation_never_exceeds_what_is_owed_and_accounts_for_every_cent(
    dues: list[InstallmentDue], amount: Decimal, order: list[Component]
) -> None:
    result = allocate(dues, amount, order)
    owed = total_owed(dues)
    assert result.allocated == min(amount, owed)
    assert result.allocated + result.unallocated == amount
    assert sum(ln.amount for ln in result.lines) == result.allocated
    for component in COMPONENTS:
        assert result.paid(component) == sum(
            (getattr(b, component) - getattr(a, component)
             for b, a in zip(dues, result.remaining, strict=True)), Decimal("0"))
        for after in result.remaining:
            assert getattr(after, component) >= 0
    assert all(ln.amount > 0 for ln in result.lines)


@settings(max_examples=400, deadline=None)
@given(installments(), amounts, orders)
def test_allocation_is_oldest_first_and_in_the_given_order(
    dues: list[InstallmentDue], amount: Decimal, order: list[Component]
) -> None:
    result = allocate(dues, amount, order)
    before = {i.number: i for i in dues}
    after = {i.number: i for i in result.remaining}
    # every (installment, component) slot in payment order: oldest, then component order
    slots = [(i.number, c) for i in sorted(dues, key=lambda i: (i.due_date, i.number))
             for c in order]
    paid_slots = [(ln.installment, ln.component) for ln in result.lines]
    positions = [slots.index(s) for s in paid_slots]
    assert positions == sorted(set(positions))  # each slot once, never going back
    last = positions[-1] if positions else -1
    for index, (number, component) in enumerate(slots):
        now, was = getattr(after[number], component), getattr(before[number], component)
        if index < last:
            assert now == 0  # everything ahead of the last line is settled
        elif index > last:
            assert now == was  # nothing behind it is touched


@settings(max_examples=300, deadline=None)
@given(installments(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20000"),
                                   places=2),
       st.decimals(min_value=Decimal("0"), max_value=Decimal("10"), places=2))
def test_decide_rejects_exactly_the_overpayments_beyond_tolerance(
    dues: list[InstallmentDue], amount: Decimal, tolerance: Decimal
) -> None:
    outcome = decide_repayment(dues, amount, tolerance=tolerance)
    if amount > total_owed(dues) + tolerance:
        assert isinstance(outcome, Rejection) and outcome.refundable_amount == amount
    else:
        assert isinstance(outcome, AllocationResult)
        assert outcome.unallocated <= tolerance
