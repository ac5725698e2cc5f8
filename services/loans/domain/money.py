"""Rounding rules for the loans maths.

Every amount a client sees (installment parts, fees, penalties) is rounded to the
cent (0.01 MAD) with ``ROUND_HALF_UP`` -- the rounding people do by hand and the one
Moroccan MFIs print on repayment schedules -- rather than the banker's rounding of
``shared.money.quantize``. Rates and intermediate values are never rounded; only
the final amount is. When a total is split into equal parts, the parts are rounded
and the last part absorbs the remainder, so the parts always sum exactly to the
total.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
RATIO_PLACES = Decimal("0.0001")

# Enough digits for (1 + r) ** -n with n up to a few hundred periods.
PRECISION = 40


def round_money(value: Decimal) -> Decimal:
    """Round an amount to the cent, half up (0.005 -> 0.01)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def is_cents(value: Decimal) -> bool:
    """True when ``value`` is a finite amount with at most two decimals."""
    return value.is_finite() and value == value.quantize(CENT)


def spread(total: Decimal, parts: int) -> list[Decimal]:
    """Split ``total`` (in cents) into ``parts`` equal amounts; the last absorbs the rest.

    Each part is ``total / parts`` rounded half up. Should rounding up make the first
    ``parts - 1`` amounts exceed the total (tiny totals over many parts), the parts
    are rounded down instead, so no part is ever negative.
    """
    if parts < 1:
        raise ValueError("parts must be at least 1")
    if total < 0:
        raise ValueError("total must not be negative")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        each = (total / parts).quantize(CENT, rounding=ROUND_HALF_UP)
        if each * (parts - 1) > total:
            each = (total / parts).quantize(CENT, rounding=ROUND_DOWN)
    return [each] * (parts - 1) + [total - each * (parts - 1)]
