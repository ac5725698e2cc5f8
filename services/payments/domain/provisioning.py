"""Loan-loss provisioning (pure): the rate a loan's arrears call for, the provision it
requires, and the change to post against what its allowance already holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from shared.errors import InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Rate:
    bucket: str
    min_days: int | None
    max_days: int | None
    rate: Decimal
    restructured: bool = False


def check_rates(rates: Sequence[Rate]) -> None:
    """Arrears buckets cover every day count from 0, once; at most one restructured rate."""
    arrears = sorted((r for r in rates if not r.restructured), key=lambda r: r.min_days or 0)
    if not arrears or arrears[0].min_days != 0:
        raise InvalidInput("the arrears buckets must start at 0 days", field="rates")
    for i, r in enumerate(arrears):
        if not ZERO <= r.rate <= 1:
            raise InvalidInput(f"bucket {r.bucket}: a rate is between 0 and 1",
                               field="rates.rate")
        if r.max_days is not None and r.min_days is not None and r.max_days < r.min_days:
            raise InvalidInput(f"bucket {r.bucket}: max_days < min_days", field="rates.max_days")
        last = i == len(arrears) - 1
        if last and r.max_days is not None:
            raise InvalidInput("the last arrears bucket has no max_days (open-ended)",
                               field="rates.max_days")
        if not last and (r.max_days is None or arrears[i + 1].min_days != r.max_days + 1):
            raise InvalidInput(f"bucket {r.bucket}: buckets must follow each other without "
                               "gap or overlap", field="rates.min_days")
    if sum(1 for r in rates if r.restructured) > 1:
        raise InvalidInput("one restructured rate at most", field="rates.restructured")
    if len({r.bucket for r in rates}) != len(rates):
        raise InvalidInput("bucket names are unique", field="rates.bucket")


def rate_for(rates: Sequence[Rate], days_in_arrears: int, restructured: bool) -> Rate:
    """The bucket of ``days_in_arrears``; a restructured loan takes the restructured
    rate when it is higher."""
    found: Rate | None = None
    for r in rates:
        if r.restructured or r.min_days is None:
            continue
        if r.min_days <= days_in_arrears and (r.max_days is None or days_in_arrears <= r.max_days):
            found = r
            break
    if found is None:
        raise InvalidInput(f"no provision bucket for {days_in_arrears} days", field="rates")
    if restructured:
        special = next((r for r in rates if r.restructured), None)
        if special is not None and special.rate > found.rate:
            return special
    return found


def required(principal: Decimal, rate: Decimal) -> Decimal:
    """The provision a loan requires: outstanding principal times rate, to the cent."""
    return (principal * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def change(required_amount: Decimal, held: Decimal) -> Decimal:
    """What to post: > 0 charge (Dr expense / Cr allowance), < 0 write back."""
    return required_amount - held
