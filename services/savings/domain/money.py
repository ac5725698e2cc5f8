"""Rounding rules of savings. Interest accrues in fractions of a centime; only postings
are rounded, and what rounding leaves is carried to the next period."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

ZERO = Decimal("0")
CENT = Decimal("0.01")
ACCRUAL_QUANTUM = Decimal("1e-10")
"""Daily accruals are kept to 10 decimals (NUMERIC(24,10) in SQL, the same rounding)."""


def cents_down(value: Decimal) -> Decimal:
    """To the centime, towards zero: the bank never posts more than it accrued."""
    return value.quantize(CENT, rounding=ROUND_DOWN)


def cents_half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def accrual(value: Decimal) -> Decimal:
    """A day's accrual as stored: 10 decimals, half up (SQL ``round(x, 10)``)."""
    return value.quantize(ACCRUAL_QUANTUM, rounding=ROUND_HALF_UP)


def is_cents(value: Decimal) -> bool:
    return value.is_finite() and value == value.quantize(CENT)
