"""Properties of servicing: whatever sequence of repayments, prepayments, reschedules and
close-of-business days, no component is ever owed below zero, no more principal is
collected than was lent, and paying the payoff closes the loan with nothing left.

The loan is modelled as its stored installments (due and paid), moved exactly as the
service moves them: ``compute_payoff`` / ``allocate`` / ``rebuild_after_prepayment`` /
``restructure`` for the maths, the bookkeeping (paid + owed) of
``repository/schedules.py`` written out here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.loans.domain.allocation import InstallmentDue, allocate
from services.loans.domain.payoff import compute_payoff, owed
from services.loans.domain.products import (
    Amortization,
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    InterestMethod,
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

ZERO = Decimal("0.00")
START = date(2026, 1, 5)
OPEN = ("pending", "overdue")
COMPONENTS = ("principal", "interest", "fees", "penalties")


@dataclass
class Row:
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


class Loan:
    def __init__(self, terms: ProductTerms, principal: Decimal, term: int) -> None:
        self.terms, self.principal = terms, principal
        self.rows = [Row(p.number, p.due_date, p.principal, p.interest, p.fees)
                     for p in build_schedule(terms, principal, term, START)]
        self.collected_principal = ZERO
        self.closed = False

    def open(self) -> list[Row]:
        return [r for r in self.rows if r.status in OPEN]

    def set_owed(self, new: list[InstallmentDue]) -> None:
        by = {r.number: r for r in self.rows}
        for n in new:
            row = by[n.number]
            row.principal_due = row.principal_paid + n.principal
            row.interest_due = row.interest_paid + n.interest
            row.fees_due = row.fees_paid + n.fees
            row.penalties_due = row.penalties_paid + n.penalties

    def replace_owed(self, new: list[InstallmentDue], numbers: list[int]) -> None:
        """repository.schedules.replace_owed"""
        by = {r.number: r for r in self.rows}
        targets = list(numbers)
        top = max(by)
        while len(targets) < len(new):
            top += 1
            targets.append(top)
        for row_new, number in zip(new, targets, strict=False):
            if number not in by:
                by[number] = Row(number, row_new.due_date, ZERO, ZERO, ZERO)
                self.rows.append(by[number])
            row = by[number]
            row.due_date, row.status = row_new.due_date, "pending"
        self.set_owed([replace(n, number=t) for n, t in zip(new, targets, strict=False)])
        for number in targets[len(new):]:
            row = by[number]
            row.principal_due, row.interest_due = row.principal_paid, row.interest_paid
            row.fees_due, row.penalties_due = row.fees_paid, row.penalties_paid
            row.status = "paid"

    def apply(self, lines: list[tuple[int, str, Decimal]], day: date) -> None:
        by = {r.number: r for r in self.rows}
        for number, component, amount in lines:
            row = by[number]
            setattr(row, f"{component}_paid", getattr(row, f"{component}_paid") + amount)
            if component == "principal":
                self.collected_principal += amount
        for row in self.open():
            if all(getattr(row, f"{c}_paid") >= getattr(row, f"{c}_due") for c in COMPONENTS):
                row.status = "paid"
        if not self.open():
            self.closed = True

    def pay(self, amount: Decimal, day: date) -> Decimal:
        """servicing.apply_repayment: returns the excess."""
        quote = compute_payoff(self.rows, self.terms, loan_principal=self.principal,
                               disbursed_on=START, as_of=day)
        order = self.terms.allocation_order
        if amount >= quote.total:
            self.set_owed(list(quote.settlement))
            result = allocate([owed(r) for r in self.open()], quote.total, order, as_of=day)
            self.apply([(x.installment, x.component, x.amount) for x in result.lines], day)
            return amount - quote.total
        due = [owed(r) for r in self.open() if r.due_date <= day]
        future = [owed(r) for r in sorted(self.open(), key=lambda r: (r.due_date, r.number))
                  if r.due_date > day]
        due_now = sum((d.total for d in due), ZERO)
        prepaid = amount - due_now
        rule = self.terms.prepayment_rule
        if rule is PrepaymentRule.NEXT_INSTALLMENTS or prepaid <= 0 or not future \
                or prepaid >= sum((f.principal for f in future), ZERO):
            result = allocate([owed(r) for r in self.open()], amount, order, as_of=day)
            self.apply([(x.installment, x.component, x.amount) for x in result.lines], day)
            return result.unallocated
        lines: list[tuple[int, str, Decimal]] = [
            (x.installment, x.component, x.amount)
            for x in allocate(due, due_now, order, as_of=day).lines]
        new = rebuild_after_prepayment(self.terms, future, prepaid, rule)
        remaining = [r for k, r in enumerate(new) if k == 0 or r.principal > 0]
        kept = [replace(remaining[0], principal=remaining[0].principal + prepaid),
                *remaining[1:]]
        self.replace_owed(kept, [f.number for f in future])
        lines.append((future[0].number, "principal", prepaid))
        self.apply(lines, day)
        return ZERO

    def close_of_business(self, day: date) -> None:
        for row in self.open():
            if row.due_date < day and owed(row).total > 0:
                if row.status == "pending":
                    row.penalties_due += Decimal("5.00")
                row.status = "overdue"

    def reschedule(self, params: RestructureTerms, day: date) -> None:
        owed_rows = [owed(r) for r in sorted(self.open(), key=lambda r: (r.due_date, r.number))]
        if sum((o.principal for o in owed_rows), ZERO) <= 0:
            return
        result = restructure(self.terms, owed_rows, day, params, loan_principal=self.principal)
        self.replace_owed(list(result.installments), sorted(r.number for r in self.open()))


terms_st = st.builds(
    lambda method, amort, rate, day_count, rule, fee: replace(
        product(method, amort, rate=rate, fees=fee), day_count=day_count,
        prepayment_rule=rule),
    st.sampled_from(list(InterestMethod)), st.sampled_from(list(Amortization)),
    st.sampled_from(["0.00", "0.12", "0.24", "0.36"]), st.sampled_from(list(DayCount)),
    st.sampled_from(list(PrepaymentRule)),
    st.sampled_from([(), (Fee(FeeKind.FLAT, Decimal("20.00"), FeeTiming.AT_DISBURSEMENT),),
                     (Fee(FeeKind.FLAT, Decimal("2.00"), FeeTiming.PER_INSTALLMENT),)]))

step_st = st.one_of(
    st.tuples(st.just("pay"), st.integers(1, 150000).map(lambda c: Decimal(c) / 100),
              st.integers(0, 40)),
    st.tuples(st.just("cob"), st.just(ZERO), st.integers(1, 40)),
    st.tuples(st.just("reschedule"), st.integers(0, 3).map(Decimal), st.integers(0, 40)),
)


def check(loan: Loan) -> None:
    for row in loan.rows:
        for c in COMPONENTS:
            assert getattr(row, f"{c}_paid") <= getattr(row, f"{c}_due"), (row, c)
            assert getattr(row, f"{c}_paid") >= 0
    assert loan.collected_principal <= loan.principal


@settings(max_examples=300, deadline=None)
@given(terms=terms_st, principal=st.integers(10000, 2000000).map(lambda c: Decimal(c) / 100),
       term=st.integers(1, 12), steps=st.lists(step_st, max_size=8),
       payoff_after=st.integers(0, 60))
def test_any_sequence_keeps_amounts_sane_and_the_payoff_closes_the_loan(
        terms: ProductTerms, principal: Decimal, term: int,
        steps: list[tuple[str, Decimal, int]], payoff_after: int) -> None:
    loan = Loan(terms, principal, term)
    day = START
    for kind, value, days in steps:
        if loan.closed:
            break
        day += timedelta(days=days)
        if kind == "pay":
            excess = loan.pay(value, day)
            assert excess >= 0
        elif kind == "cob":
            loan.close_of_business(day)
        else:
            # reschedule the open installments (not capitalised: principal stays lent)
            loan.reschedule(RestructureTerms(term=max(len(loan.open()), 1),
                                             moratorium=int(value)), day)
        check(loan)
    if loan.closed:
        return
    day += timedelta(days=payoff_after)
    quote = compute_payoff(loan.rows, terms, loan_principal=principal, disbursed_on=START,
                           as_of=day)
    assert quote.total >= sum((owed(r).principal for r in loan.open()), ZERO)
    assert loan.pay(quote.total, day) == 0
    check(loan)
    assert loan.closed and all(owed(r).total == 0 for r in loan.rows)
    assert loan.collected_principal == principal
