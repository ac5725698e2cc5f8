"""Request bodies. Money and rates are decimal strings; a JSON number is refused."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from services.loans.domain.products import (
    Amortization,
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
    Penalty,
    PenaltyKind,
    ProductTerms,
)
from shared.money import Amount, PositiveAmount

_DECIMAL = re.compile(r"^\d{1,6}(\.\d{1,8})?$")


def _parse_decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("must be a decimal string such as \"0.24\", not a JSON number")
    if not _DECIMAL.match(value.strip()):
        raise ValueError("must be a non-negative decimal string such as \"0.24\"")
    return Decimal(value.strip())


DecimalString = Annotated[Decimal, BeforeValidator(_parse_decimal)]
"""A rate, a fraction or a flat amount as a string ("0.24" = 24 %)."""

Component = Literal["penalties", "fees", "interest", "principal"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeeIn(Body):
    kind: FeeKind
    value: DecimalString
    timing: FeeTiming


class PenaltyIn(Body):
    kind: PenaltyKind
    value: DecimalString
    tolerance_days: StrictInt = 0


class ProductIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    interest_method: InterestMethod
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS
    frequency: Frequency
    annual_rate: DecimalString
    min_principal: PositiveAmount
    max_principal: PositiveAmount
    min_term: StrictInt
    max_term: StrictInt
    grace_principal: StrictInt = 0
    grace_interest: StrictInt = 0
    fees: list[FeeIn] = []
    penalty: PenaltyIn | None = None
    day_count: DayCount = DayCount.ACTUAL_365
    allocation_order: list[Component] = ["penalties", "fees", "interest", "principal"]
    overpayment_tolerance: Amount = Decimal("0.00")

    def terms(self) -> ProductTerms:
        return ProductTerms(
            interest_method=self.interest_method, amortization=self.amortization,
            frequency=self.frequency, annual_rate=self.annual_rate,
            min_principal=self.min_principal, max_principal=self.max_principal,
            min_term=self.min_term, max_term=self.max_term,
            grace_principal=self.grace_principal, grace_interest=self.grace_interest,
            fees=tuple(Fee(f.kind, f.value, f.timing) for f in self.fees),
            penalty=None if self.penalty is None else Penalty(
                self.penalty.kind, self.penalty.value, self.penalty.tolerance_days),
            day_count=self.day_count, allocation_order=tuple(self.allocation_order),
            overpayment_tolerance=self.overpayment_tolerance,
        )


class LoanApplicationIn(Body):
    client_id: Annotated[str, Field(min_length=1, max_length=100)]
    product_id: Annotated[str, Field(min_length=1, max_length=100)]
    principal: PositiveAmount
    term: StrictInt


class DecisionIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class OptionalReasonIn(Body):
    reason: Annotated[str, Field(max_length=500)] = ""


class CloseOfBusinessIn(Body):
    business_date: dt.date
