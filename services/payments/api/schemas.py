"""What the payments routes take and return.

Money is a decimal string everywhere (``"500.00"``), never a JSON number. Instants
are ISO 8601 strings, as the routes have always written them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.contracts.common import Currency, Msisdn, PositiveAmount
from shared.money import format_amount

Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Money = Annotated[str, Field(description="a decimal string, e.g. \"500.00\"",
                             examples=["500.00"])]
Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


def money_strings(value: Any) -> Any:
    """Decimals → "123.45" strings, recursively (JSON never carries money as a number)."""
    if isinstance(value, Decimal):
        return format_amount(value)
    if isinstance(value, dict):
        return {k: money_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [money_strings(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


# -- requests --------------------------------------------------------------------------


class RepaymentRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    loan_id: Ref
    amount: PositiveAmount
    currency: Currency
    payer_msisdn: Msisdn
    external_ref: Ref
    provider_reference: Ref = Field(description=(
        "the provider's transaction reference (e.g. `SIM-…`): the payment is confirmed "
        "with the provider by it before anything is credited"))
    provider: Ref | None = Field(default=None, description=(
        "the provider that moved the money; default: the wallet's own if it is one, "
        "else the default provider"))


class RetryRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Note = ""
    msisdn: Msisdn | None = None  # only for a payment that had no payer wallet


# -- repayments and payments -----------------------------------------------------------


class RepaymentAccepted(Out):
    """``202``: the repayment is recorded; loans allocates it (``Location`` names it)."""

    payment_id: str
    status: str = Field(description=(
        "`received` (confirmed by the provider and credited), `unconfirmed` (waiting for "
        "the provider's confirmation), or the status of the first payment of this "
        "provider transaction"))


class RefundOut(Out):
    """One refund payout of a repayment."""

    payout_id: str
    amount: Money
    status: str
    msisdn: str
    provider_reference: str | None
    failure_reason: str | None


class PaymentOut(Out):
    """A repayment (collection) and its refunds."""

    payment_id: str
    kind: str = Field(description="always `repayment`")
    loan_id: str
    amount: Money
    currency: str
    status: str = Field(description="unconfirmed, rejected_unconfirmed, received, posted, "
                                    "refund_pending, refunded or refund_failed")
    payer_msisdn: str | None
    provider: str
    source: str = Field(description="`api` (a wallet's call) or `callback` (a provider's)")
    external_ref: str
    provider_reference: str | None
    rejection_reason: str | None
    received_at: Instant
    updated_at: Instant
    refunds: list[RefundOut]


class PayoutOut(Out):
    """A payout: a loan disbursement, a refund payout or a savings withdrawal."""

    payout_id: str
    kind: str = Field(description="`disbursement`, `refund` or `withdrawal`")
    saga_id: str
    loan_id: str
    msisdn: str
    amount: Money
    currency: str
    provider: str
    status: str = Field(description="pending, submitted, completed or failed")
    provider_reference: str | None
    failure_reason: str | None
    resolved_by: str | None
    deadline: dt.datetime
    created_at: dt.datetime
    completed_at: dt.datetime | None
    payment_id: str | None
    in_doubt_since: dt.datetime | None = None
    account_id: str | None = Field(default=None,
                                   description="a withdrawal's savings account")


# -- the day's payments ------------------------------------------------------------------


class PaymentItem(Out):
    id: str
    kind: str = Field(description="collection, payout, refund or withdrawal")
    status: str
    amount: Money
    currency: str
    loan_id: str
    partner_id: str | None
    msisdn: str | None
    provider: str
    provider_reference: str | None
    payment_id: str | None
    saga_id: str | None
    reason: str | None
    source: str | None
    at: Instant
    completed_at: Instant | None


class KindTotal(Out):
    count: int
    amount: Money


class PaymentDay(Out):
    """One local day's payments (Africa/Casablanca), a page of them; the totals cover the
    whole filtered day."""

    date: str
    timezone: str
    kind: str | None
    status: str | None
    items: list[PaymentItem]
    totals: dict[str, KindTotal]
    next_cursor: str | None


# -- refunds held for review -------------------------------------------------------------


class HeldRefund(Out):
    payment_id: str
    loan_id: str
    partner_id: str | None
    provider: str
    payment_status: str
    rejection_reason: str | None
    received_at: Instant
    amount: Money
    msisdn: str | None
    last_payout_id: str | None
    failure_reason: str | None
    failed_at: Instant | None
    retries: int
    retry_proposed: bool = Field(default=False, description=(
        "a retry is proposed and waits for another operator's approval"))
    retry_proposed_by: str | None = None
    retry_proposed_at: Instant | None = None


class HeldRefunds(Out):
    items: list[HeldRefund]
    next_cursor: str | None = Field(default=None, description=(
        "pass as `cursor` for the next page; null on the last"))


class RetryAudit(Out):
    """One operator's retry of a held refund."""

    attempt: int
    payout_id: str
    previous_payout_id: str | None
    amount: Money
    msisdn: str
    requested_by: str
    requested_at: Instant
    note: str
    approved_by: str | None = None
    mode: str = Field(default="new_attempt", description=(
        "`new_attempt` (a new payout after the provider confirmed the last one failed) or "
        "`resend` (the in-doubt payout asked again with its original correlation id)"))


class RetryAudits(Out):
    payment_id: str
    items: list[RetryAudit]


class RetryQueued(Out):
    """``202``: the retry is approved; the payout worker pays (or asks about) it."""

    payment_id: str
    payout_id: str
    status: str = Field(description="`pending` (a new payout) or `in_doubt` (the same "
                                    "payout asked again)")
    retry: RetryAudit


# -- the ledger --------------------------------------------------------------------------


class KindBalance(Out):
    kind: str
    normal_side: str
    accounts: int
    debits: Money
    credits: Money
    balance: Money


class TrialBalance(Out):
    total_debits: Money
    total_credits: Money
    lines_debits: Money
    lines_credits: Money
    balanced: bool
    by_kind: list[KindBalance]


class AccountOut(Out):
    id: str
    kind: str
    name: str
    normal_side: str
    non_negative: bool
    debits: Money
    credits: Money
    balance: Money


class StatementLine(Out):
    line_id: int
    transfer_id: str
    kind: str
    loan_id: str | None
    side: str
    amount: Money
    balance_after: Money
    memo: str
    posted_at: Instant


class Statement(Out):
    account: AccountOut
    lines: list[StatementLine]
    next_before: int | None = Field(description="pass as `before` for the older lines")


class PortfolioBalance(Out):
    loan_id: str
    account_id: str
    exists: bool
    portfolio_balance: Money
    currency: str


class ReconciliationItem(Out):
    """One movement; ours carry ``our_reference`` and ``loan_id``, the provider's
    ``msisdn`` and ``provider_reference_kind``; a mismatch both amounts."""

    reference: str | None
    kind: str
    amount: Money
    our_reference: str | None = None
    loan_id: str | None = None
    msisdn: str | None = None
    provider_reference_kind: str | None = None
    ledger_amount: Money | None = None
    provider_amount: Money | None = None


class ReconciliationSummary(Out):
    matched: int
    amount_mismatch: int
    ours_only: int
    theirs_only: int
    reconciled: bool


class Reconciliation(Out):
    provider: str
    date: str
    matched: list[ReconciliationItem]
    amount_mismatch: list[ReconciliationItem]
    ours_only: list[ReconciliationItem]
    theirs_only: list[ReconciliationItem]
    summary: ReconciliationSummary


# -- provider callbacks --------------------------------------------------------------------


class CollectionCallbackOut(Out):
    status: str = Field(description="`accepted`, or `duplicate` if already recorded")
    payment_id: str


class PayoutCallbackOut(Out):
    status: str = Field(description="the payout's status after the callback")
    payout_id: str


# -- reconciliation runs and alerts ------------------------------------------------------


class ReconciliationRunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Ref
    date: dt.date | None = Field(default=None, description=(
        "the business day (Africa/Casablanca); default: today's"))


class AlertResolveRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=500)]


class ReconciliationAlertOut(Out):
    id: str
    provider: str
    business_date: str
    mismatch: str = Field(description="ours_only, theirs_only or amount_mismatch")
    reference: str
    kind: str
    loan_id: str
    ours_amount: Money | None
    theirs_amount: Money | None
    status: str = Field(description="open or resolved")
    raised_at: Instant
    resolved_at: Instant | None
    resolved_by: str | None
    resolution_note: str | None


class ReconciliationAlerts(Out):
    items: list[ReconciliationAlertOut]
    next_cursor: str | None


class ReconciliationRun(Reconciliation):
    run: dict[str, Any]
