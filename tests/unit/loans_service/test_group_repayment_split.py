"""Splitting one group collection over the members' loans."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain.group_repayment import (
    DueItem,
    Member,
    next_meeting,
    owed_by,
    split,
)

D = date(2026, 4, 6)


def member(loan: str, *items: tuple[date, str, bool]) -> Member:
    return Member(loan, f"c-{loan}", tuple(DueItem(d, Decimal(a), o) for d, a, o in items))


def test_exactly_what_each_member_owes() -> None:
    members = [member(f"l{i}", (D, f"{100 + i}.50", False)) for i in range(5)]
    total = sum((owed_by(m, D) for m in members), Decimal("0"))
    result = split(members, total, D, cover_arrears=False)
    assert result.shares == {f"l{i}": Decimal(f"{100 + i}.50") for i in range(5)}
    assert result.unallocated == 0


def test_short_payment_goes_oldest_first_and_future_installments_are_not_owed() -> None:
    members = [member("a", (D, "100.00", False), (date(2026, 4, 13), "100.00", False)),
               member("b", (date(2026, 4, 1), "50.00", False), (D, "100.00", False))]
    result = split(members, Decimal("120.00"), D, cover_arrears=False)
    assert result.shares == {"b": Decimal("50.00"), "a": Decimal("70.00")}


def test_arrears_are_covered_by_the_group_only_when_its_rules_say_so() -> None:
    members = [member("a", (D, "100.00", False)),
               member("b", (date(2026, 3, 30), "80.00", True), (D, "100.00", False))]
    strict = split(members, Decimal("300.00"), D, cover_arrears=False)
    assert strict.shares == {"a": Decimal("100.00"), "b": Decimal("100.00")}
    assert strict.unallocated == Decimal("100.00")   # refunded, not paid on b's arrears
    joint = split(members, Decimal("300.00"), D, cover_arrears=True)
    assert joint.shares == {"a": Decimal("100.00"), "b": Decimal("180.00")}
    assert joint.unallocated == Decimal("20.00")


def test_before_the_first_meeting_the_split_is_by_the_next_meetings_installments() -> None:
    first, second = date(2026, 4, 13), date(2026, 4, 20)
    members = [member(f"l{i}", (first, f"{100 + i}.00", False), (second, "100.00", False))
               for i in range(3)]
    assert next_meeting(members, D) == first
    result = split(members, Decimal("320.00"), D, cover_arrears=False)
    assert result.shares == {"l0": Decimal("100.00"), "l1": Decimal("101.00"),
                             "l2": Decimal("102.00")}
    assert result.unallocated == Decimal("17.00")   # refunded; the second meeting waits
    short = split(members, Decimal("150.00"), D, cover_arrears=False)
    assert short.shares == {"l0": Decimal("100.00"), "l1": Decimal("50.00")}
    assert split(members, Decimal("50.00"), D, cover_arrears=True).unallocated == 0


def test_between_meetings_arrears_come_first_only_when_the_group_covers_them() -> None:
    past, coming = date(2026, 3, 30), date(2026, 4, 13)
    members = [member("a", (past, "0.00", False), (coming, "100.00", False)),
               member("b", (past, "80.00", True), (coming, "100.00", False))]
    joint = split(members, Decimal("230.00"), D, cover_arrears=True)
    assert joint.shares == {"b": Decimal("130.00"), "a": Decimal("100.00")}
    assert joint.unallocated == 0
    short = split(members, Decimal("120.00"), D, cover_arrears=True)
    assert short.shares == {"b": Decimal("80.00"), "a": Decimal("40.00")}
    strict = split(members, Decimal("230.00"), D, cover_arrears=False)
    assert strict.shares == {"a": Decimal("100.00"), "b": Decimal("100.00")}
    assert strict.unallocated == Decimal("30.00")


def test_nothing_left_to_owe_leaves_the_payment_unallocated() -> None:
    members = [member("a", (date(2026, 3, 30), "0.00", False))]
    assert next_meeting(members, D) is None
    result = split(members, Decimal("40.00"), D, cover_arrears=True)
    assert result.shares == {} and result.unallocated == Decimal("40.00")


AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)


@given(st.lists(st.lists(st.tuples(st.integers(0, 20), AMOUNTS, st.booleans()), max_size=4),
                min_size=1, max_size=6), AMOUNTS, st.booleans())
def test_the_split_sums_to_the_payment_and_never_exceeds_what_is_owed(
        raw: list[list[tuple[int, Decimal, bool]]], amount: Decimal, cover: bool) -> None:
    members = [Member(f"l{i}", f"c{i}", tuple(
        DueItem(date(2026, 4, 1 + d), a, o) for d, a, o in items))
        for i, items in enumerate(raw)]
    on = date(2026, 4, 15)
    result = split(members, amount, on, cover_arrears=cover)
    assert sum(result.shares.values(), Decimal("0")) + result.unallocated == amount
    assert result.unallocated >= 0
    due_now = any(i.due_date <= on and i.owed > 0 and not i.overdue
                  for m in members for i in m.items)
    horizon = on if due_now else (next_meeting(members, on) or on)
    for m in members:
        assert result.shares.get(m.loan_id, Decimal("0")) <= owed_by(m, horizon)
