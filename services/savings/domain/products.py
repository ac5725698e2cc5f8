"""Savings products: voluntary savings, compulsory savings linked to a loan product, and
term deposits. Versioned like loan products: an account keeps the version it was opened
on. Rates and shares are fractions (``0.03`` is 3 %), amounts are MAD with two decimals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal

from services.savings.domain.money import ZERO, cents_half_up, is_cents
from shared.errors import InvalidInput

ProductKind = Literal["voluntary", "compulsory", "term_deposit"]
InterestBasis = Literal["daily_balance", "minimum_balance"]
PostingPeriod = Literal["monthly", "quarterly"]
MaturityInstruction = Literal["renew", "pay_out"]

MAX_RATE = Decimal("1")  # 100 % a year: anything above is a typo


def _rate(value: Decimal, field: str, *, maximum: Decimal = MAX_RATE) -> Decimal:
    if not value.is_finite() or value < 0 or value > maximum:
        raise InvalidInput(f"{field} is a fraction between 0 and {maximum} (0.03 for 3 %)",
                           field=field)
    return value


def _amount(value: Decimal, field: str) -> Decimal:
    if not is_cents(value) or value < 0:
        raise InvalidInput(f"{field} is a non-negative amount with at most two decimals",
                           field=field)
    return value


def _count(value: int, field: str, *, low: int, high: int) -> int:
    if value < low or value > high:
        raise InvalidInput(f"{field} is between {low} and {high}", field=field)
    return value


@dataclass(frozen=True)
class VoluntaryTerms:
    annual_rate: Decimal
    interest_basis: InterestBasis = "daily_balance"
    posting_period: PostingPeriod = "monthly"
    min_opening_balance: Decimal = ZERO
    min_balance: Decimal = ZERO
    withdrawal_fee: Decimal = ZERO
    free_withdrawals_per_month: int = 0
    dormant_after_months: int = 12
    withholding_tax_rate: Decimal = ZERO
    kind: Literal["voluntary"] = "voluntary"

    def __post_init__(self) -> None:
        _rate(self.annual_rate, "annual_rate")
        _rate(self.withholding_tax_rate, "withholding_tax_rate")
        _amount(self.min_opening_balance, "min_opening_balance")
        _amount(self.min_balance, "min_balance")
        _amount(self.withdrawal_fee, "withdrawal_fee")
        _count(self.free_withdrawals_per_month, "free_withdrawals_per_month", low=0, high=1000)
        _count(self.dormant_after_months, "dormant_after_months", low=1, high=240)
        if self.min_balance > self.min_opening_balance and self.min_opening_balance > 0:
            raise InvalidInput("min_balance cannot exceed min_opening_balance",
                               field="min_balance")


@dataclass(frozen=True)
class CompulsoryTerms:
    """Savings a loan product requires: a share of the principal held before
    disbursement, and/or an amount paid with each installment; blocked until the loan
    closes. Interest as voluntary savings (daily balance, monthly unless quarterly)."""

    loan_product_id: str
    annual_rate: Decimal = ZERO
    share_of_principal: Decimal = ZERO
    amount_per_installment: Decimal = ZERO
    posting_period: PostingPeriod = "monthly"
    withholding_tax_rate: Decimal = ZERO
    kind: Literal["compulsory"] = "compulsory"

    def __post_init__(self) -> None:
        if not self.loan_product_id.strip() or len(self.loan_product_id) > 64:
            raise InvalidInput("loan_product_id names a loan product", field="loan_product_id")
        _rate(self.annual_rate, "annual_rate")
        _rate(self.share_of_principal, "share_of_principal")
        _rate(self.withholding_tax_rate, "withholding_tax_rate")
        _amount(self.amount_per_installment, "amount_per_installment")
        if self.share_of_principal == 0 and self.amount_per_installment == 0:
            raise InvalidInput("compulsory savings need share_of_principal or "
                               "amount_per_installment", field="share_of_principal")

    def required_before_disbursement(self, principal: Decimal) -> Decimal:
        """What must be held before the loan is disbursed (half up to the centime)."""
        return cents_half_up(principal * self.share_of_principal)

    def required_with_installment(self) -> Decimal:
        return self.amount_per_installment


@dataclass(frozen=True)
class TermDepositTerms:
    term_months: int
    annual_rate: Decimal
    min_opening_balance: Decimal = ZERO
    early_break_penalty_rate: Decimal = ZERO
    """Taken off the annual rate for the days actually held when the deposit is broken
    early (never below zero)."""
    withholding_tax_rate: Decimal = ZERO
    default_instruction: MaturityInstruction = "pay_out"
    kind: Literal["term_deposit"] = "term_deposit"

    def __post_init__(self) -> None:
        _count(self.term_months, "term_months", low=1, high=120)
        _rate(self.annual_rate, "annual_rate")
        _rate(self.early_break_penalty_rate, "early_break_penalty_rate")
        _rate(self.withholding_tax_rate, "withholding_tax_rate")
        _amount(self.min_opening_balance, "min_opening_balance")
        if self.default_instruction not in ("renew", "pay_out"):
            raise InvalidInput("default_instruction is renew or pay_out",
                               field="default_instruction")


Terms = VoluntaryTerms | CompulsoryTerms | TermDepositTerms


def terms_to_dict(terms: Terms) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in asdict(terms).items():
        out[key] = str(value) if isinstance(value, Decimal) else value
    return out


_DECIMALS = {"annual_rate", "min_opening_balance", "min_balance", "withdrawal_fee",
             "withholding_tax_rate", "share_of_principal", "amount_per_installment",
             "early_break_penalty_rate"}


def terms_from_dict(data: dict[str, Any]) -> Terms:
    values: dict[str, Any] = {k: Decimal(str(v)) if k in _DECIMALS else v
                              for k, v in data.items()}
    kind = values.get("kind")
    if kind == "voluntary":
        return VoluntaryTerms(**values)
    if kind == "compulsory":
        return CompulsoryTerms(**values)
    if kind == "term_deposit":
        return TermDepositTerms(**values)
    raise InvalidInput("kind is voluntary, compulsory or term_deposit", field="kind")


def interest_basis(terms: Terms) -> InterestBasis:
    return terms.interest_basis if isinstance(terms, VoluntaryTerms) else "daily_balance"


def posting_period(terms: Terms) -> PostingPeriod | None:
    """None for a term deposit: its interest is posted at maturity."""
    return None if isinstance(terms, TermDepositTerms) else terms.posting_period


def min_balance(terms: Terms) -> Decimal:
    return terms.min_balance if isinstance(terms, VoluntaryTerms) else ZERO


def min_opening(terms: Terms) -> Decimal:
    return ZERO if isinstance(terms, CompulsoryTerms) else terms.min_opening_balance
