"""What clients knows of each loan's behaviour, from the loans service's facts.

A loan is in arrears from ``LoanInArrears`` until ``LoanArrearsCured``; it ends when it
is closed or written off. Facts about one loan arrive in order (keyed by loan id), but a
fact can come back later: a redelivery (the inbox drops it) or a replay of a dead letter
after newer facts were applied. So each arrears fact carries its position — the business
date and when loans published it — and a fact older than the one the loan's state rests
on changes nothing; an ended loan takes no arrears fact at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

Ended = Literal["closed", "written_off"]


@dataclass(frozen=True)
class LoanBehaviour:
    loan_id: str
    client_id: str
    in_arrears: bool = False
    days_in_arrears: int = 0
    worst_days: int = 0
    bucket: str | None = None
    amount_overdue: Decimal | None = None
    as_of: dt.date | None = None
    as_of_at: dt.datetime | None = None
    ended: Ended | None = None


def _older(state: LoanBehaviour, business_date: dt.date, at: dt.datetime) -> bool:
    if state.as_of is None:
        return False
    if business_date != state.as_of:
        return business_date < state.as_of
    return state.as_of_at is not None and at < state.as_of_at


def in_arrears(state: LoanBehaviour, *, business_date: dt.date, at: dt.datetime,
               days: int, bucket: str, amount_overdue: Decimal) -> LoanBehaviour | None:
    """``LoanInArrears``: the new state, or None when the fact changes nothing."""
    if state.ended is not None or _older(state, business_date, at):
        return None
    return replace(state, in_arrears=True, days_in_arrears=days,
                   worst_days=max(state.worst_days, days), bucket=bucket,
                   amount_overdue=amount_overdue, as_of=business_date, as_of_at=at)


def cured(state: LoanBehaviour, *, business_date: dt.date, at: dt.datetime
          ) -> LoanBehaviour | None:
    """``LoanArrearsCured``: the new state, or None when the fact changes nothing. A cure
    that arrives before the arrears it cures is kept: the older arrears fact then finds
    a newer state and is dropped."""
    if state.ended is not None or _older(state, business_date, at):
        return None
    return replace(state, in_arrears=False, days_in_arrears=0, bucket="current",
                   amount_overdue=Decimal("0.00"), as_of=business_date, as_of_at=at)


def ended(state: LoanBehaviour, how: Ended, *, worst_days: int | None = None
          ) -> LoanBehaviour | None:
    """``LoanClosed`` / ``LoanWrittenOff``: the loan is no longer in arrears, for good."""
    if state.ended is not None:
        return None
    worst = max(state.worst_days, worst_days or 0)
    return replace(state, in_arrears=False, days_in_arrears=0, worst_days=worst, ended=how)
