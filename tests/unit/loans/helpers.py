"""Helpers shared by the loans unit tests (no I/O)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from services.loans.domain.allocation import InstallmentDue
from services.loans.domain.products import (
    Amortization,
    Fee,
    Frequency,
    InterestMethod,
    Penalty,
    ProductTerms,
)


def cents(value: Decimal | str | int) -> Decimal:
    """Round half up to the cent, as a client would on paper."""
    return Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def product(
    method: InterestMethod = InterestMethod.DECLINING_BALANCE,
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS,
    frequency: Frequency = Frequency.MONTHLY,
    rate: str = "0.12",
    *,
    grace_principal: int = 0,
    grace_interest: int = 0,
    fees: tuple[Fee, ...] = (),
    penalty: Penalty | None = None,
) -> ProductTerms:
    """A permissive product: 100 to 1 000 000 MAD, up to 120 installments."""
    return ProductTerms(
        interest_method=method,
        amortization=amortization,
        frequency=frequency,
        annual_rate=Decimal(rate),
        min_principal=Decimal("100.00"),
        max_principal=Decimal("1000000.00"),
        min_term=1 + max(grace_principal, grace_interest),
        max_term=120,
        grace_principal=grace_principal,
        grace_interest=grace_interest,
        fees=fees,
        penalty=penalty,
    )


def due(
    number: int,
    due_date: date,
    principal: str = "0",
    interest: str = "0",
    fees: str = "0",
    penalties: str = "0",
) -> InstallmentDue:
    return InstallmentDue(
        number=number,
        due_date=due_date,
        principal=Decimal(principal),
        interest=Decimal(interest),
        fees=Decimal(fees),
        penalties=Decimal(penalties),
    )
