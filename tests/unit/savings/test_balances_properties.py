"""Properties of balances and holds: whatever sequence of deposits, withdrawals (hold,
then settle or release) and interest postings, the available balance never goes below
zero and the balance is the sum of the statement lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.savings.domain import account as acc
from services.savings.domain.withdrawal import decide
from shared.errors import Conflict

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2)
ops = st.lists(st.one_of(
    st.tuples(st.just("deposit"), amounts),
    st.tuples(st.just("withdraw"), amounts),
    st.tuples(st.just("settle"), st.integers(0, 20)),
    st.tuples(st.just("release"), st.integers(0, 20)),
    st.tuples(st.just("post"), amounts, st.decimals(min_value=0, max_value=1, places=2)),
), max_size=60)


@dataclass
class Book:
    balances: acc.Balances = field(default_factory=acc.Balances)
    lines: list[Decimal] = field(default_factory=list)
    holds: list[Decimal] = field(default_factory=list)


@settings(max_examples=300, deadline=None)
@given(ops, st.decimals(min_value=0, max_value=1000, places=2))
def test_available_never_negative_and_balance_is_the_sum_of_lines(
        sequence: list[tuple[object, ...]], floor: Decimal) -> None:
    book = Book()
    for op in sequence:
        kind = op[0]
        if kind == "deposit":
            amount = op[1]
            assert isinstance(amount, Decimal)
            book.balances = acc.credit(book.balances, amount)
            book.lines.append(amount)
        elif kind == "withdraw":
            amount = op[1]
            assert isinstance(amount, Decimal)
            try:
                book.balances = acc.place_hold(book.balances, amount, floor=floor)
                book.holds.append(amount)
            except Conflict:
                assert amount > book.balances.available - floor   # refused only if too much
        elif kind in ("settle", "release") and book.holds:
            index = op[1]
            assert isinstance(index, int)
            amount = book.holds.pop(index % len(book.holds))
            if kind == "settle":
                book.balances = acc.settle_hold(book.balances, amount)
                book.lines.append(-amount)
            else:
                book.balances = acc.release_hold(book.balances, amount)
        elif kind == "post":
            gross, tax_rate = op[1], op[2]
            assert isinstance(gross, Decimal) and isinstance(tax_rate, Decimal)
            tax = (gross * tax_rate).quantize(Decimal("0.01"))
            book.balances = acc.post_interest(book.balances, gross, min(tax, gross))
            book.lines.append(gross)
            if min(tax, gross):
                book.lines.append(-min(tax, gross))
        assert book.balances.available >= 0
        assert book.balances.held == sum(book.holds, Decimal(0))
        assert book.balances.ledger == sum(book.lines, Decimal(0))


def test_a_hold_above_the_available_balance_is_refused_and_moves_nothing() -> None:
    b = acc.Balances(ledger=Decimal("100.00"), held=Decimal("30.00"))
    with pytest.raises(Conflict) as refused:
        acc.place_hold(b, Decimal("70.01"))
    assert refused.value.field == "amount"
    assert acc.place_hold(b, Decimal("70.00")).available == 0
    with pytest.raises(Conflict):
        acc.place_hold(b, Decimal("60.01"), floor=Decimal("10.00"))


replies = st.lists(st.sampled_from(["paid", "failed", "in_doubt"]), max_size=12)


@given(replies)
def test_the_saga_settles_or_releases_at_most_once_whatever_is_redelivered(
        sequence: list[str]) -> None:
    status = "pending"
    moves = []
    for reply in sequence:
        decision = decide(status, reply)  # type: ignore[arg-type]
        if decision.action in ("settle", "release"):
            moves.append(decision.action)
        status = decision.status
    assert len(moves) <= 1
    if "paid" in sequence and (not moves or moves[0] == "settle"):
        first = next(r for r in sequence if r in ("paid", "failed"))
        assert moves == (["settle"] if first == "paid" else ["release"])


def test_in_doubt_keeps_the_hold_and_a_contradiction_goes_to_review() -> None:
    assert decide("pending", "in_doubt").action == "mark_in_doubt"
    assert decide("in_doubt", "in_doubt").action == "none"
    assert decide("in_doubt", "paid").action == "settle"
    assert decide("in_doubt", "failed").action == "release"
    assert decide("released", "paid") == decide("paid", "failed") == type(
        decide("paid", "failed"))("review", "anomaly")
