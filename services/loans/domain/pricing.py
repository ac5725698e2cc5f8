"""Price transparency: the TEG (taux effectif global) and the total cost of credit.

The borrower receives the principal (fees at disbursement are due with the first
installment, so the payout is the principal) and pays every installment, fees
included. The periodic rate ``r`` is the internal rate of return of those cash flows
on the schedule's period grid (installment k paid k periods after the payout):

    principal = sum(total_k / (1 + r) ** k  for k = 1..n)

which is what a spreadsheet's ``RATE(n, -payment, principal)`` (equal installments) or
``IRR([-principal, total_1, …, total_n])`` gives. The TEG is that rate annualised
proportionally, ``r x periods per year`` (12, 26 or 52) as the Moroccan TEG is stated;
the actuarial equivalent ``(1 + r) ** periods_per_year - 1`` is given alongside.
The total cost of credit is everything paid beyond the principal: interest and fees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from services.loans.domain.money import PRECISION, ZERO

RATE_PLACES = Decimal("0.000001")
MAX_PERIODIC_RATE = Decimal("10")
ITERATIONS = 200


@dataclass(frozen=True)
class Price:
    teg: Decimal
    """Annual, proportional: periodic IRR x periods per year (6 decimals)."""
    effective_annual_rate: Decimal
    """Annual, actuarial: (1 + periodic IRR) ** periods per year - 1 (6 decimals)."""
    periodic_rate: Decimal
    total_cost_of_credit: Decimal
    total_repayable: Decimal


def _npv(rate: Decimal, principal: Decimal, payments: Sequence[Decimal]) -> Decimal:
    """Present value of the payments at ``rate`` minus the principal paid out."""
    discount = 1 / (1 + rate)
    factor = Decimal(1)
    value = -principal
    for payment in payments:
        factor *= discount
        value += payment * factor
    return value


def periodic_irr(principal: Decimal, payments: Sequence[Decimal]) -> Decimal:
    """The rate per period at which the payments are worth the principal (bisection; the
    present value falls as the rate rises, so the root is unique). 0 when nothing is
    paid beyond the principal."""
    if principal <= 0 or not payments:
        raise ValueError("a price needs a principal and at least one payment")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        if sum(payments, ZERO) <= principal:
            return ZERO
        low, high = Decimal(0), MAX_PERIODIC_RATE
        for _ in range(ITERATIONS):
            mid = (low + high) / 2
            if _npv(mid, principal, payments) > 0:
                low = mid
            else:
                high = mid
            if high - low < Decimal("1e-15"):
                break
        return (low + high) / 2


def price(principal: Decimal, payments: Sequence[Decimal], periods_per_year: int) -> Price:
    """TEG and cost of credit of a loan of ``principal`` repaid by ``payments`` (each
    installment's total, in order, one period apart)."""
    rate = periodic_irr(principal, payments)
    total = sum(payments, ZERO)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        effective = (1 + rate) ** periods_per_year - 1
        return Price(
            teg=(rate * periods_per_year).quantize(RATE_PLACES),
            effective_annual_rate=effective.quantize(RATE_PLACES),
            periodic_rate=rate.quantize(Decimal("0.0000000001")),
            total_cost_of_credit=total - principal,
            total_repayable=total,
        )
