"""What the accounting routes return: the chart, the rules, the settings, close-of-business
runs, manual journals, periods and statements. Money is a decimal string, business dates
``YYYY-MM-DD`` and instants ISO 8601, as the routes have always written them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from services.payments.api.schemas import Instant, Money, Out

Day = Annotated[str, Field(json_schema_extra={"format": "date"})]


class GLAccountOut(Out):
    code: str
    name_fr: str
    name_ar: str
    type: str = Field(description="asset, liability, equity, income or expense")
    usage: str = Field(description="`header` (rolls up) or `detail` (takes postings)")
    parent_code: str | None
    regulator_code: str | None


class GLAccounts(Out):
    accounts: list[GLAccountOut]


class RuleOut(Out):
    gl_code: str
    source: str = Field(description="`product` (its own row) or `default` (the `*` rules)")
    updated_by: str
    updated_at: Instant


class PostingKindOut(Out):
    debit: list[str]
    credit: list[str]


class ProductRules(Out):
    product_id: str
    rules: dict[str, RuleOut] = Field(description="role (ledger account kind) -> rule")
    roles: dict[str, str] | None = Field(default=None, description="what each role is for")
    posting_kinds: dict[str, PostingKindOut] | None = None


class AccountingSettingsOut(Out):
    accounting_basis: str = Field(description="`cash` or `accrual`")
    non_accrual_days: int
    updated_by: str
    updated_at: Instant


class AccrualRunOut(Out):
    business_date: Day
    batch: int
    basis: str
    loans: int = Field(description="loans that accrued")
    accrued: Money
    reversed: Money
    non_accrual: int = Field(description="loans that entered non-accrual")
    source: str
    run_at: Instant
    created: bool = Field(description="false: the date (and batch) was posted before")


class ProvisionRunOut(Out):
    business_date: Day
    batch: int
    loans: int
    required: Money
    charged: Money
    released: Money
    source: str
    run_at: Instant
    created: bool


class RateOut(Out):
    bucket: str
    min_days: int | None
    max_days: int | None
    rate: str = Field(description="a fraction, e.g. \"0.05\"")
    restructured: bool


class Rates(Out):
    rates: list[RateOut]


class JournalLineOut(Out):
    gl_code: str
    side: str
    amount: Money


class JournalOut(Out):
    id: str
    business_date: Day
    reason: str
    attachments: list[str]
    lines: list[JournalLineOut]
    office_id: str | None
    amount: Money
    status: str = Field(description="proposed, approved or rejected")
    proposed_by: str
    proposed_at: Instant
    decided_by: str | None
    decided_at: Instant | None
    decision_note: str | None
    transfer_id: str | None


class JournalPage(Out):
    items: list[JournalOut]
    next_cursor: str | None = Field(default=None, description=(
        "pass as `cursor` for the next page; null on the last"))


class PeriodOut(Out):
    period: str
    starts_on: Day
    ends_on: Day
    closed_by: str
    closed_at: Instant


class Periods(Out):
    closed: list[PeriodOut]


class PeriodClose(PeriodOut):
    created: bool = Field(description="false: the period was already closed")


class YearClose(Out):
    year: int
    transfer_id: str
    net_income: Money
    closed_by: str
    closed_at: Instant
    created: bool


# -- statements ---------------------------------------------------------------------------


class GLRow(Out):
    code: str
    name_fr: str
    name_ar: str
    type: str
    parent_code: str | None
    regulator_code: str | None
    debits: Money
    credits: Money
    balance: Money = Field(description="in the account type's normal direction")


class StatementHead(Out):
    statement: str
    office_id: str | None = Field(description="the office (and its subtree); null: all")
    currency: str
    accruals_pending: list[Day] = Field(default_factory=list, description=(
        "business dates up to the statement's date whose accruals (a night's batches "
        "from loans' close of business) are still being posted: the statement is final "
        "once this is empty"))


class TrialBalanceStatement(StatementHead):
    as_of: Day
    accounts: list[GLRow]
    total_debits: Money
    total_credits: Money
    balanced: bool


class IncomeStatement(StatementHead):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    since: Day = Field(alias="from")
    to: Day
    income: list[GLRow]
    expenses: list[GLRow]
    total_income: Money
    total_expenses: Money
    net_income: Money


class BalanceSheet(StatementHead):
    as_of: Day
    assets: list[GLRow]
    liabilities: list[GLRow]
    equity: list[GLRow]
    unclosed_result: Money
    total_assets: Money
    total_liabilities: Money
    total_equity: Money
    balanced: bool


class GLLine(Out):
    line_id: int
    account_id: str
    side: str
    amount: Money
    office_id: str | None
    transfer_id: str
    kind: str
    loan_id: str | None
    memo: str
    business_date: Day
    posted_at: Instant


class GLLines(Out):
    code: str
    lines: list[GLLine] = Field(description="newest first")
    next_cursor: str | None = Field(default=None, description=(
        "pass as `cursor` for the next page; null on the last"))
    next_before: int | None = Field(default=None, description=(
        "deprecated: the newest-first paging by `before`; use `cursor`"))


CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "the statement as JSON, or CSV (`Accept: text/csv` or "
                         "`?format=csv`)"}}
