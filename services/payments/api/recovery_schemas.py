"""What the recovery routes take and return (money as decimal strings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.payments.api.schemas import Instant, Money, Note, Out


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["returned", "written_off"] = Field(description=(
        "`returned`: a collection (provider-confirmed, held in suspense) gave the money "
        "back; `written_off`: what is left is lost"))
    payment_id: str | None = Field(default=None, max_length=60, description=(
        "for `returned`: the collection that returned the payout"))
    note: Note = ""


class RecoveryNote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Note = ""


class RecoveryProposal(Out):
    outcome: str
    payment_id: str | None
    note: str
    proposed_by: str
    proposed_at: Instant


class ReturnedPayment(Out):
    payment_id: str
    amount: Money


class Recovery(Out):
    recovery_id: str
    group_id: str
    group_loan_id: str
    saga_id: str
    loan_id: str = Field(description="the member's loan, paid out and still `disbursing`")
    client_id: str
    msisdn: str | None
    payout_id: str | None
    payout_status: str | None = Field(description="the payout as payments knows it")
    amount: Money = Field(description="what was paid out to the member")
    recovered: Money
    written_off: Money
    remaining: Money
    currency: str
    reason: str = Field(description="why the group disbursement failed")
    status: str = Field(description="`open`, `recovered` or `written_off`")
    created_at: Instant
    closed_at: Instant | None
    returned_payments: list[ReturnedPayment]
    proposal: RecoveryProposal | None = Field(description=(
        "the outcome waiting for a second operator"))


class RecoveryPage(Out):
    items: list[Recovery]
    next_cursor: str | None = Field(description="pass back as `cursor`; null on the last page")


class RecoveryDecision(Out):
    recovery_id: str
    outcome: str
    status: str = Field(description="`proposed`, or the recovery's status once approved")
    payment_id: str | None
    amount: Money
    proposed_by: str
    approved_by: str | None = None
