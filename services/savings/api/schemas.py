"""Request and response bodies. Every route declares its response model; money is a
decimal string (``"500.00"``), rates are fractions as decimal strings (``"0.03"``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.savings.domain.account import Account
from services.savings.domain.products import (
    CompulsoryTerms,
    TermDepositTerms,
    Terms,
    VoluntaryTerms,
)
from services.savings.repository.withdrawals import Withdrawal
from shared.errors import InvalidInput
from shared.money import Amount, PositiveAmount


def _fraction(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("a rate is a decimal string such as \"0.035\", not a JSON number")
    try:
        parsed = Decimal(value.strip())
    except ArithmeticError:
        raise ValueError("a rate is a decimal string such as \"0.035\"") from None
    if not parsed.is_finite() or parsed < 0 or parsed > 1 or parsed != round(parsed, 6):
        raise ValueError("a rate is a fraction from 0 to 1 with at most 6 decimals")
    return parsed


Rate = Annotated[Decimal, BeforeValidator(_fraction)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductIn(Body):
    name: str = Field(max_length=120)
    kind: Literal["voluntary", "compulsory", "term_deposit"]
    annual_rate: Rate = Decimal(0)
    interest_basis: Literal["daily_balance", "minimum_balance"] = "daily_balance"
    posting_period: Literal["monthly", "quarterly"] = "monthly"
    min_opening_balance: Amount = Decimal(0)
    min_balance: Amount = Decimal(0)
    withdrawal_fee: Amount = Decimal(0)
    free_withdrawals_per_month: int = Field(default=0, ge=0, le=1000)
    dormant_after_months: int = Field(default=12, ge=1, le=240)
    withholding_tax_rate: Rate = Decimal(0)
    loan_product_id: str | None = Field(default=None, max_length=64)
    share_of_principal: Rate = Decimal(0)
    amount_per_installment: Amount = Decimal(0)
    term_months: int | None = Field(default=None, ge=1, le=120)
    early_break_penalty_rate: Rate = Decimal(0)
    default_instruction: Literal["renew", "pay_out"] = "pay_out"

    def terms(self) -> Terms:
        if self.kind == "voluntary":
            return VoluntaryTerms(
                annual_rate=self.annual_rate, interest_basis=self.interest_basis,
                posting_period=self.posting_period,
                min_opening_balance=self.min_opening_balance, min_balance=self.min_balance,
                withdrawal_fee=self.withdrawal_fee,
                free_withdrawals_per_month=self.free_withdrawals_per_month,
                dormant_after_months=self.dormant_after_months,
                withholding_tax_rate=self.withholding_tax_rate)
        if self.kind == "compulsory":
            if not self.loan_product_id:
                raise InvalidInput("compulsory savings name their loan product",
                                   field="loan_product_id")
            return CompulsoryTerms(
                loan_product_id=self.loan_product_id, annual_rate=self.annual_rate,
                share_of_principal=self.share_of_principal,
                amount_per_installment=self.amount_per_installment,
                posting_period=self.posting_period,
                withholding_tax_rate=self.withholding_tax_rate)
        if self.term_months is None:
            raise InvalidInput("a term deposit has a term", field="term_months")
        return TermDepositTerms(
            term_months=self.term_months, annual_rate=self.annual_rate,
            min_opening_balance=self.min_opening_balance,
            early_break_penalty_rate=self.early_break_penalty_rate,
            withholding_tax_rate=self.withholding_tax_rate,
            default_instruction=self.default_instruction)


class ProductOut(BaseModel):
    id: str
    version: int
    name: str
    currency: str
    is_current: bool
    created_by: str
    created_at: dt.datetime
    terms: dict[str, Any] = Field(description="the version's terms (rates and amounts as "
                                              "decimal strings)")


class ProductDetailOut(ProductOut):
    versions: list[ProductOut]


class ProductPage(BaseModel):
    items: list[ProductOut]


class OpenAccountIn(Body):
    client_id: str = Field(max_length=64)
    product_id: str = Field(max_length=64)
    opening_deposit: Amount = Field(default=Decimal(0),
                                    description="cash taken at the branch with the opening")
    linked_loan_id: str | None = Field(default=None, max_length=64,
                                       description="compulsory savings: the loan secured")
    maturity_instruction: Literal["renew", "pay_out"] | None = Field(
        default=None, description="term deposits: what happens at maturity")


class AmountIn(Body):
    amount: PositiveAmount


class WithdrawalIn(Body):
    amount: PositiveAmount
    msisdn: str | None = Field(default=None, max_length=32,
                               description="the wallet paid; the client's phone if absent")


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=500)


class CloseOfBusinessIn(Body):
    business_date: dt.date


class AccountOut(BaseModel):
    id: str = Field(description="a lower-case UUID")
    payment_reference: str = Field(
        description="what the client gives a wallet to pay into this account: "
                    "SAV-<account id>", examples=["SAV-3f6c2a10-8d4e-4b1a-9c55-0e7f1d2b6a90"])
    client_id: str
    partner_id: str
    office_id: str | None = Field(default=None, description="the client's office")
    office_path: str | None = Field(default=None,
                                    description="its materialised path, ho/r-souss/b-agadir")
    product_id: str
    product_version: int
    kind: str
    status: str
    currency: str = "MAD"
    ledger_balance: Amount
    held_balance: Amount
    available_balance: Amount
    opening_deposit: Amount
    blocked: bool
    block_reason: str | None
    opened_by: str
    approved_by: str | None
    linked_loan_id: str | None
    linked_loan_closed: bool
    maturity_date: dt.date | None
    maturity_instruction: str | None
    last_client_transaction_on: dt.date | None
    opened_on: dt.date | None
    closed_on: dt.date | None

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls(
            id=a.id, payment_reference=a.payment_reference, client_id=a.client_id,
            partner_id=a.partner_id, office_id=a.office_id, office_path=a.office_path,
            product_id=a.product_id,
            product_version=a.product_version, kind=a.kind, status=a.status,
            ledger_balance=a.balances.ledger, held_balance=a.balances.held,
            available_balance=a.balances.available, opening_deposit=a.opening_deposit,
            blocked=a.blocked, block_reason=a.block_reason, opened_by=a.opened_by,
            approved_by=a.approved_by, linked_loan_id=a.linked_loan_id,
            linked_loan_closed=a.linked_loan_closed, maturity_date=a.maturity_date,
            maturity_instruction=a.maturity_instruction,
            last_client_transaction_on=a.last_client_txn_on, opened_on=a.opened_on,
            closed_on=a.closed_on)


class AccountPage(BaseModel):
    items: list[AccountOut]


class StatementLine(BaseModel):
    id: int
    kind: str
    amount: Amount = Field(description="credits positive, debits negative")
    value_date: dt.date
    channel: str | None
    reference: str | None
    balance: Amount = Field(description="the running balance after this line")


class StatementOut(BaseModel):
    account_id: str
    opening_balance: Amount
    closing_balance: Amount
    ledger_balance: Amount
    available_balance: Amount
    lines: list[StatementLine]


class WithdrawalOut(BaseModel):
    id: str
    account_id: str
    client_id: str
    amount: Amount
    fee: Amount
    msisdn: str
    status: Literal["pending", "in_doubt", "paid", "released", "review"]
    requested_by: str
    requested_on: dt.date
    reason: str | None
    provider_reference: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, w: Withdrawal) -> WithdrawalOut:
        return cls(id=w.id, account_id=w.account_id, client_id=w.client_id, amount=w.amount,
                   fee=w.fee, msisdn=w.msisdn, status=w.status,
                   requested_by=w.requested_by, requested_on=w.requested_on, reason=w.reason,
                   provider_reference=w.provider_reference, created_at=w.created_at,
                   updated_at=w.updated_at)


class WithdrawalPage(BaseModel):
    items: list[WithdrawalOut]


class CobDateOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    business_date: dt.date
    status: str


class CobLinks(BaseModel):
    self: str


class CobRunOut(BaseModel):
    """One business date's close of business (a job: poll ``links.self``)."""

    run_id: str
    business_date: dt.date
    status: Literal["running", "succeeded", "failed"]
    step: str | None = Field(description="while running: the step (or the earlier date "
                                         "being caught up) it is in")
    requested_by: str | None
    attempts: int
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    seconds: float | None
    error: str | None
    counts: dict[str, int] = Field(description="maturities, accruals, postings, dormancy: "
                                               "the accounts each finished step changed")
    caught_up: list[dt.date] = Field(
        default_factory=list, description="earlier dates this run closed first, in order")
    links: CobLinks


class CobRunPage(BaseModel):
    items: list[CobRunOut]


class StandingInstructionIn(Body):
    loan_id: str = Field(min_length=1, max_length=64)
    max_amount: PositiveAmount | None = Field(
        default=None, description="at most this per installment (none: what is due)")


class StandingInstructionOut(BaseModel):
    account_id: str
    loan_id: str
    max_amount: Amount | None
    active: bool
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class StandingInstructionPage(BaseModel):
    items: list[StandingInstructionOut]


class CompulsoryHoldOut(BaseModel):
    saga_id: str
    loan_id: str
    client_id: str
    loan_product_id: str
    principal: Amount
    required: Amount
    held: Amount
    status: Literal["waiting", "held", "released", "freed"]
    reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CompulsoryHoldPage(BaseModel):
    items: list[CompulsoryHoldOut]


class ArrearsCoverIn(Body):
    loan_id: str = Field(min_length=1, max_length=64, description="the member's loan")


class CoveredInstallment(BaseModel):
    installment: int
    due_date: dt.date
    owed: Amount
    as_of: dt.date = Field(description="the business date loans last told what it owed")


class CoverSource(BaseModel):
    account_id: str
    client_id: str
    amount: Amount
    own: bool = Field(description="the member's own compulsory savings")
    payment_id: str | None = Field(default=None, description=(
        "the repayment it became (once approved): payments' and loans' payment id"))


class ArrearsCoverOut(BaseModel):
    id: str
    group_id: str
    group_loan_id: str
    loan_id: str
    client_id: str
    office_id: str | None
    amount: Amount = Field(description="what the member's loan had overdue when requested")
    installments: list[CoveredInstallment]
    sources: list[CoverSource]
    other_members_allowed: bool = Field(description=(
        "the group's rule lets other members' compulsory savings cover a member's arrears"))
    status: Literal["pending", "approved", "rejected"]
    requested_by: str
    decided_by: str | None
    reason: str | None
    paid: Amount | None
    created_at: dt.datetime
    decided_at: dt.datetime | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ArrearsCoverOut:
        return cls.model_validate({k: row[k] for k in cls.model_fields})


class ArrearsCoverPage(BaseModel):
    items: list[ArrearsCoverOut]
