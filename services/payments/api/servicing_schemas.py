"""What the held-payment and loan-servicing routes take and return (money as decimal
strings)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.payments.api.schemas import Instant, Money, Note, Out

LoanRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class MatchRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    loan_id: LoanRef = Field(description="the loan the payment was meant for (its id)")
    note: Note = ""


class DecisionNote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Note = ""


class HeldProposal(Out):
    action: str = Field(description="`match` or `refund`")
    loan_id: str | None
    note: str
    proposed_by: str
    proposed_at: Instant


class HeldPayment(Out):
    payment_id: str
    reference: str = Field(description="the reference the payer typed")
    amount: Money
    currency: str
    payer_msisdn: str | None
    provider: str
    partner_id: str | None
    reason: str | None
    received_at: Instant
    proposal: HeldProposal | None = Field(description=(
        "the decision waiting for a second operator, if any"))


class HeldPayments(Out):
    items: list[HeldPayment]
    next_cursor: str | None


class HeldDecision(Out):
    payment_id: str
    action: str
    status: str = Field(description=(
        "`proposed` (waiting for another operator), or after approval the payment's: "
        "`received` (matched: loans is told again) or `refund_pending`/`refund_failed`"))
    loan_id: str | None = None
    proposed_by: str
    approved_by: str | None = None


class ServicingMemo(Out):
    kind: str = Field(description=(
        "`interest_waived` (early settlement), `late_charges_waived`, "
        "`interest_capitalised` (restructuring)"))
    source_id: str
    amount: Money = Field(description="what loans reported")
    booked: Money = Field(description=(
        "what the ledger moved for it (0: a memo only — nothing had been recognised)"))
    basis: str
    business_date: str | None
    transfer_id: str | None
    detail: dict[str, object]
    recorded_at: Instant


class LoanServicing(Out):
    loan_id: str
    portfolio_balance: Money = Field(description=(
        "the loan's principal in the ledger (= loans' outstanding principal)"))
    interest_receivable: Money
    capitalised_interest_reserved: Money
    memos: list[ServicingMemo]
