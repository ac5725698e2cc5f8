"""Request and response bodies. Money and rates are decimal strings; a JSON number for
either is refused."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

from services.loans.domain.charges import (
    ChargeBasis,
    ChargeCalculation,
    ChargeFrequency,
    LateChargeRule,
)
from services.loans.domain.loan import LoanStatus
from services.loans.domain.products import (
    Amortization,
    DayCount,
    Fee,
    FeeKind,
    FeeTiming,
    Frequency,
    InterestMethod,
    NonWorkingDayRule,
    Penalty,
    PenaltyKind,
    PrepaymentRule,
    ProductTerms,
)
from services.loans.domain.purpose import LoanPurpose
from services.loans.domain.saga import SagaStatus, Step
from shared.money import Amount, PositiveAmount

AMOUNT_PATTERN = r"^-?\d{1,13}(\.\d{1,2})?$"

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


class LateChargeIn(Body):
    frequency: ChargeFrequency
    calculation: ChargeCalculation
    value: DecimalString
    basis: ChargeBasis = ChargeBasis.OVERDUE_AMOUNT
    grace_days: StrictInt = 0
    period_days: StrictInt = 30
    cap_amount: PositiveAmount | None = None
    cap_annual_rate: DecimalString | None = None

    def rule(self) -> LateChargeRule:
        return LateChargeRule(self.frequency, self.calculation, self.value, self.basis,
                              self.grace_days, self.period_days, self.cap_amount,
                              self.cap_annual_rate)


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
    late_charge: LateChargeIn | None = None
    reminder_days_before: StrictInt | None = None
    overdue_reminder_days: list[StrictInt] | None = None
    overdue_reminder_every: StrictInt | None = None
    non_working_day_rule: NonWorkingDayRule = NonWorkingDayRule.NEXT
    meeting_weekday: StrictInt | None = None
    prepayment_rule: PrepaymentRule = PrepaymentRule.NEXT_INSTALLMENTS

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
            late_charge=None if self.late_charge is None else self.late_charge.rule(),
            reminder_days_before=self.reminder_days_before,
            overdue_reminder_days=None if self.overdue_reminder_days is None
            else tuple(self.overdue_reminder_days),
            overdue_reminder_every=self.overdue_reminder_every,
            non_working_day_rule=self.non_working_day_rule,
            meeting_weekday=self.meeting_weekday, prepayment_rule=self.prepayment_rule,
        )


class LoanApplicationIn(Body):
    client_id: Annotated[str, Field(min_length=1, max_length=100)]
    product_id: Annotated[str, Field(min_length=1, max_length=100)]
    principal: PositiveAmount
    term: StrictInt
    purpose: LoanPurpose | None = None


class WaiverIn(Body):
    amount: PositiveAmount | None = Field(
        default=None, description="what to waive; all the late charges owed when omitted")
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class DecisionIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class OptionalReasonIn(Body):
    reason: Annotated[str, Field(max_length=500)] = ""


class CloseOfBusinessIn(Body):
    business_date: dt.date


# -- responses -------------------------------------------------------------------
# Money is a decimal string ("5000.00"), rates and fractions too ("0.24"); dates are
# "YYYY-MM-DD", instants ISO 8601 with their offset. The routes build these shapes as
# dicts; declaring them here lets FastAPI check every answer against them and lets the
# OpenAPI document say what each route returns.

Money = Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN),
                  WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN,
                                  "examples": ["5000.00"]})]
"""An amount as a decimal string, at most two decimals."""

Rate = Annotated[str, WithJsonSchema({
    "type": "string", "examples": ["0.24"],
    "description": "a decimal string: a fraction (\"0.24\" = 24 %) or, for a flat fee or "
                   "penalty, an amount"})]

Ratio = Annotated[str, StringConstraints(pattern=r"^\d+\.\d{4}$"),
                  WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{4}$",
                                  "examples": ["0.0471"]})]
"""A share of the outstanding principal, four decimals ("0.0471" = 4.71 %)."""

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""An instant, ISO 8601 with its UTC offset."""


class Out(BaseModel):
    """A response body: exactly these fields (a field the route adds without declaring it
    here fails the route's tests rather than reaching a client undocumented)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# products
class FeeOut(Out):
    kind: FeeKind
    value: Rate
    timing: FeeTiming


class PenaltyOut(Out):
    kind: PenaltyKind
    value: Rate
    tolerance_days: int


class LateChargeOut(Out):
    frequency: ChargeFrequency
    calculation: ChargeCalculation
    value: Rate
    basis: ChargeBasis
    grace_days: int
    period_days: int
    cap_amount: Money | None
    cap_annual_rate: Rate | None


class ProductOut(Out):
    """One version of a product with its terms."""

    id: str
    version: int
    name: str
    currency: str
    is_current: bool
    created_by: str
    created_at: Timestamp
    interest_method: InterestMethod
    amortization: Amortization
    frequency: Frequency
    annual_rate: Rate
    min_principal: Money
    max_principal: Money
    min_term: int
    max_term: int
    grace_principal: int
    grace_interest: int
    fees: list[FeeOut]
    penalty: PenaltyOut | None
    day_count: DayCount
    allocation_order: list[Component]
    overpayment_tolerance: Money
    late_charge: LateChargeOut | None = None
    reminder_days_before: int | None = None
    overdue_reminder_days: list[int] | None = None
    overdue_reminder_every: int | None = None
    non_working_day_rule: NonWorkingDayRule = NonWorkingDayRule.NEXT
    meeting_weekday: int | None = None
    prepayment_rule: PrepaymentRule = PrepaymentRule.NEXT_INSTALLMENTS


class ProductDetailOut(ProductOut):
    """The current version, and every version, oldest first."""

    versions: list[ProductOut]


class ProductPage(Out):
    items: list[ProductOut]


# loans
class OutstandingOut(Out):
    principal: Money
    interest: Money
    fees: Money
    penalties: Money
    total: Money


class NextDueOut(Out):
    installment: int
    due_date: dt.date
    amount: Money


class InstallmentOut(Out):
    number: int
    due_date: dt.date
    principal: Money
    interest: Money
    fees: Money
    penalties: Money
    total: Money
    paid: Money
    outstanding: Money
    status: Literal["pending", "overdue", "paid", "written_off"]
    paid_on: dt.date | None


class LoanOut(Out):
    id: str
    client_id: str
    partner_id: str
    product_id: str
    product_version: int
    status: LoanStatus
    principal: Money
    term: int
    currency: str
    submitted_by: str
    submitted_at: Timestamp | None = Field(default=None,
                                           description="when the application was stored")
    decided_by: str | None
    decision_reason: str | None
    disbursed_on: dt.date | None
    closed_on: dt.date | None
    written_off_on: dt.date | None
    outstanding: OutstandingOut = Field(
        description="what is owed, by component (zero until the loan is disbursed)")
    days_in_arrears: int
    arrears_bucket: str
    next_due: NextDueOut | None
    allowed_actions: list[str]
    reference: str | None = Field(default=None, description=(
        "the short reference a borrower types as the payment reference (L + 9 characters)"))
    purpose: LoanPurpose | None = None
    recovered_amount: Money = Field(default="0.00", description=(
        "money received since the loan was written off (recoveries)"))
    max_days_in_arrears: int = Field(default=0, description="the worst days in arrears")
    teg: Rate | None = Field(default=None, description=(
        "effective global rate (TEG): periodic IRR of the principal paid out against every "
        "installment (fees included) x periods a year; a fraction, 6 decimals"))
    total_cost_of_credit: Money | None = Field(
        default=None, description="interest and fees: everything repaid beyond the principal")
    schedule_version: int = Field(default=1, description="bumped by every schedule rebuild "
                                                         "(prepayment, rescheduling)")
    restructured: bool = Field(default=False, description=(
        "restructured, until the borrower has paid the agreed number of installments of the "
        "new schedule on time"))
    restructured_on: dt.date | None = None


class PayoffOut(Out):
    loan_id: str
    date: dt.date
    currency: str
    principal: Money
    interest: Money = Field(description="interest due, and accrued in the current period to "
                                        "the date by the product's day count")
    fees: Money
    penalties: Money
    total: Money = Field(description="a payment of at least this closes the loan")
    interest_waived: Money = Field(description="scheduled interest not earned by the date")
    fees_waived: Money
    interest_accrued_from: dt.date | None


class ScheduleVersionOut(Out):
    version: int
    reason: str
    replaced_by: int
    created_by: str
    business_date: dt.date
    installments: list[InstallmentOut]
    detail: dict[str, Any]
    created_at: Timestamp


class ScheduleVersionPage(Out):
    loan_id: str
    current_version: int
    items: list[ScheduleVersionOut]


class LoanApplicationOut(LoanOut):
    """The application as submitted, with its schedule preview."""

    schedule: list[InstallmentOut]
    total_repayable: Money
    schedule_note: str


class ApprovedLoanOut(LoanOut):
    saga_id: str = Field(description="the disbursement saga just started")


class LoanPage(Out):
    items: list[LoanOut]
    next_after: str | None = Field(
        description="``order=id``: pass as ``after`` for the next page; null on the last "
                    "page and in ``submitted`` order")
    next_cursor: str | None = Field(
        default=None, description="pass as ``cursor`` for the next page (either order); "
                                  "null on the last page")


class AllocationLineOut(Out):
    installment: int
    component: Component
    amount: Money


class RepaymentOut(Out):
    payment_id: str
    amount: Money
    outcome: Literal["applied", "rejected"]
    reason: str | None
    allocation: list[AllocationLineOut]
    received_at: Timestamp


class ScheduleOut(Out):
    loan_id: str
    status: LoanStatus
    installments: list[InstallmentOut]
    total_repayable: Money
    outstanding: OutstandingOut
    repayments: list[RepaymentOut]


# installments due on a date
class DueInstallmentOut(Out):
    loan_id: str
    client_id: str
    partner_id: str
    installment: int
    due_date: dt.date
    total: Money
    paid: Money
    amount_due: Money
    status: Literal["due", "partly_paid", "paid"]
    days_in_arrears: int
    days_late: int = Field(default=0, description="days since the due date (0 if not past)")
    reference: str | None = None


class LoanRequestOut(Out):
    """A maker-checker request on a loan: a write-off or a waiver of late charges."""

    id: str
    loan_id: str
    kind: Literal["write_off", "waiver"]
    status: Literal["pending", "approved", "rejected"]
    amount: Money | None
    reason: str
    proposed_by: str
    proposed_at: Timestamp
    decided_by: str | None
    decided_at: Timestamp | None


class LoanRequestPage(Out):
    items: list[LoanRequestOut]


class DueByStatus(Out):
    due: int
    partly_paid: int
    paid: int


class DueTotals(Out):
    """Over every page of the listing."""

    count: int
    amount_due: Money
    paid: Money
    total: Money
    by_status: DueByStatus


class DuePage(Out):
    date: dt.date
    currency: str
    items: list[DueInstallmentOut]
    totals: DueTotals
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")


# portfolio at risk
class ParOut(Out):
    principal: Money
    ratio: Ratio


class ParSet(Out):
    par1: ParOut
    par30: ParOut
    par90: ParOut


class BucketOut(Out):
    loans: int
    principal: Money


class ArrearsBuckets(Out):
    current: BucketOut
    days_1_30: BucketOut = Field(alias="1-30")
    days_31_60: BucketOut = Field(alias="31-60")
    days_61_90: BucketOut = Field(alias="61-90")
    days_over_90: BucketOut = Field(alias="90+")


class SnapshotOut(Out):
    """The portfolio as one close of business left it."""

    business_date: dt.date
    loans_active: int
    outstanding_principal: Money
    par: ParSet
    arrears_buckets: ArrearsBuckets


class PortfolioOut(Out):
    currency: str
    as_of_business_date: dt.date | None = Field(
        description="the last business date closed (null before the first close of business)")
    loans_active: int
    outstanding_principal: Money
    par: ParSet
    arrears_buckets: ArrearsBuckets
    loans_by_status: dict[str, int]
    last_snapshot: SnapshotOut | None


class SnapshotPage(Out):
    items: list[SnapshotOut]


# the saga monitor
class SagaData(Out):
    client_id: str
    partner_id: str
    amount: Money
    currency: str = "MAD"
    msisdn: str | None = None
    language: str | None = None
    payout_deadline: Timestamp | None = None
    reason: str | None = None
    provider_reference: str | None = None
    in_doubt_since: Timestamp | None = None
    # the compulsory savings step (when the loan's product requires it)
    savings_required: Money | None = None
    savings_requested: bool = False
    savings_held: Money | None = None
    savings_shortfall: Money | None = None
    savings_deadline: Timestamp | None = None
    credit_released: bool = False
    savings_released: bool = False
    # a group loan's saga (type ``group_disbursement``): one leg per member
    group_loan_id: str | None = None
    legs: list[dict[str, Any]] | None = None
    rejected: bool = False


class SagaOut(Out):
    id: str
    type: str
    loan_id: str
    state: SagaStatus
    current_step: Step
    deadline: Timestamp | None
    compensating: bool
    failed: bool
    attempts: int
    data: SagaData
    created_at: Timestamp
    updated_at: Timestamp
    in_doubt_since: Timestamp | None = Field(
        default=None, description="while ``in_doubt``: since when the payout's outcome "
                                  "has been unknown")
    age_s: float | None = Field(
        default=None, description="while ``in_doubt``: seconds since ``in_doubt_since``")


class SagaPage(Out):
    items: list[SagaOut]
    counts: dict[str, int] = Field(description="every saga, by state")
    next_cursor: str | None = Field(
        default=None, description="pass as ``cursor`` for the next page; null on the last")


class TimelineEntryOut(Out):
    at: Timestamp
    event: str
    from_state: str | None
    to_state: str
    detail: str


class SagaDetailOut(SagaOut):
    timeline: list[TimelineEntryOut]


# close of business
class CobCounts(Out):
    """Rows touched by each step; a step appears once it has ended."""

    installments_marked_overdue: int | None = None
    penalties_applied: int | None = None
    loans_reaged: int | None = None
    repayment_due_events: int | None = None
    in_arrears_events: int | None = None


class RunLinks(Out):
    self_: str = Field(alias="self")


class CobRunOut(Out):
    run_id: str
    business_date: dt.date
    status: Literal["running", "succeeded", "failed"]
    step: str | None = Field(description="while running: the step it is in")
    requested_by: str | None
    attempts: int
    started_at: Timestamp | None
    heartbeat_at: Timestamp | None
    finished_at: Timestamp | None
    seconds: float | None
    error: str | None
    counts: CobCounts
    portfolio: SnapshotOut | None = Field(
        description="the date's PAR snapshot, once the run succeeded")
    links: RunLinks


class CobRunPage(Out):
    items: list[CobRunOut]
