"""What the accounting routes take and return (money as decimal strings)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.payments.domain.accruals import DayCount
from shared.contracts.common import Amount, PositiveAmount

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z._-]{1,20}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GLAccountIn(Request):
    name_fr: Name
    name_ar: Name
    type: Literal["asset", "liability", "equity", "income", "expense"]
    usage: Literal["header", "detail"] = "detail"
    parent_code: Code | None = None
    regulator_code: Annotated[str, StringConstraints(max_length=20)] | None = None


class RulesIn(Request):
    rules: dict[str, Code] = Field(description=(
        "role (ledger account kind) -> GL account code; roles not named fall back to the "
        "default rules"))


class SettingsIn(Request):
    accounting_basis: Literal["cash", "accrual"]
    non_accrual_days: int = Field(default=90, ge=1, le=3650)


class AccrualLoan(Request):
    loan_id: Id
    days_in_arrears: int = Field(ge=0, le=36500)
    interest: Amount | None = Field(default=None, description=(
        "the day's interest as loans computed it; or give principal, annual_rate and "
        "day_count"))
    principal: Amount | None = None
    annual_rate: Decimal | None = Field(default=None, ge=0, le=10, decimal_places=8)
    day_count: DayCount | None = None
    product_id: Id | None = None
    office_id: Id | None = None
    restructured: bool = False
    fees_due: Amount = Field(default=Decimal("0.00"), ge=0, description=(
        "the fees of an installment falling due that day: accrued when due (fees "
        "receivable / fee income), settled by the repayment's fees"))

    @model_validator(mode="after")
    def _figures(self) -> AccrualLoan:
        if self.interest is None:
            if self.principal is None or self.annual_rate is None or self.day_count is None:
                raise ValueError("give interest, or principal, annual_rate and day_count")
            if self.principal < 0:
                raise ValueError("principal must not be negative")
        elif self.interest < 0:
            raise ValueError("interest must not be negative")
        return self


class AccrualsIn(Request):
    loans: list[AccrualLoan] = Field(max_length=20000)
    batch: int = Field(default=0, ge=0, le=100000)


class ProvisionLoan(Request):
    loan_id: Id
    days_in_arrears: int = Field(ge=0, le=36500)
    restructured: bool = False
    product_id: Id | None = None
    office_id: Id | None = None


class ProvisionsIn(Request):
    loans: list[ProvisionLoan] = Field(max_length=20000)
    batch: int = Field(default=0, ge=0, le=100000)


class RateIn(Request):
    bucket: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=40)]
    min_days: int | None = Field(default=None, ge=0, le=36500)
    max_days: int | None = Field(default=None, ge=0, le=36500)
    rate: Decimal = Field(ge=0, le=1, decimal_places=6)
    restructured: bool = False


class RatesIn(Request):
    rates: list[RateIn] = Field(min_length=1, max_length=50)


class JournalLineIn(Request):
    gl_code: Code
    side: Literal["debit", "credit"]
    amount: PositiveAmount


class JournalIn(Request):
    business_date: dt.date
    reason: Reason
    lines: list[JournalLineIn] = Field(min_length=2, max_length=200)
    attachments: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                       max_length=500)]] = Field(
        default_factory=list, max_length=20,
        description="references of the supporting documents (document store ids, URLs)")
    office_id: Id | None = None


class DecisionIn(Request):
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
