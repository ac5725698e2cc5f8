"""A group repayment — one collection for the whole group — split over the members' loans.

What each member owes at the payment's date is every installment due on or before it
that is not paid. The payment covers, oldest due date first (members in the group's
order on the same date):

1. what each member owes for installments **not in arrears** (due on or before the day
   and not yet overdue: this meeting's installments), then
2. the installments **in arrears** (overdue) — only when the group's rules say so
   (``cover_arrears``: the group's money covers a member in arrears, joint liability by
   agreement); otherwise a member's arrears are that member's own to pay.

When nothing of this meeting is due yet on the payment's day (a payment before the
first meeting, or between two meetings), the payment is split by what each member owes on
the group's **next meeting** (the earliest due date still to come): the arrears first
(only with ``cover_arrears``), then each member's installment of that meeting, oldest due
date first.

What is left (more than the members owe, or arrears the rules do not let the group
cover) is not allocated: payments refunds it to the payer. Each member's share is then
applied to that member's loan by the normal allocation (penalties → fees → interest →
principal, oldest installment first), so the split and the allocation agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.loans.domain.money import ZERO


@dataclass(frozen=True)
class DueItem:
    due_date: date
    owed: Decimal
    overdue: bool


@dataclass(frozen=True)
class Member:
    loan_id: str
    client_id: str
    items: tuple[DueItem, ...]


@dataclass(frozen=True)
class Split:
    shares: dict[str, Decimal]
    """loan id -> what the member's loan receives (members with 0 are left out)."""
    unallocated: Decimal


def owed_by(member: Member, on: date) -> Decimal:
    return sum((i.owed for i in member.items if i.due_date <= on and i.owed > 0), ZERO)


def next_meeting(members: list[Member], on: date) -> date | None:
    """The group's next meeting after ``on``: the earliest due date still owed after it."""
    return min((i.due_date for m in members for i in m.items
                if i.due_date > on and i.owed > 0), default=None)


def split(members: list[Member], amount: Decimal, on: date, *, cover_arrears: bool) -> Split:
    if amount < 0:
        raise ValueError("a repayment is not negative")
    left = amount
    shares: dict[str, Decimal] = {}
    horizon = on
    passes = [False, True] if cover_arrears else [False]
    due_now = any(i.due_date <= on and i.owed > 0 and not i.overdue
                  for m in members for i in m.items)
    if not due_now and (meeting := next_meeting(members, on)) is not None:
        horizon = meeting
        passes = [True, False] if cover_arrears else [False]
    for arrears in passes:
        queue = sorted(
            ((i.due_date, pos, m.loan_id, i.owed) for pos, m in enumerate(members)
             for i in m.items if i.due_date <= horizon and i.owed > 0
             and i.overdue == arrears),
            key=lambda t: (t[0], t[1]))
        for _, _, loan_id, owed in queue:
            if left <= 0:
                break
            take = min(owed, left)
            shares[loan_id] = shares.get(loan_id, ZERO) + take
            left -= take
    return Split({k: v for k, v in shares.items() if v > 0}, left)
