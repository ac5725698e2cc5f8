"""What the payout routes take and return: payouts in doubt, operators' settlements and
refund retries (maker-checker). Money is a decimal string; instants ISO 8601."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.payments.api.schemas import Instant, Money, Note, Out, PayoutOut, Ref

Evidence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=2000)]
Outcome = Annotated[str, Field(pattern="^(completed|failed)$",
                               description="`completed` or `failed`")]


class SettlementRequest(BaseModel):
    """An operator's proposal to settle an in-doubt payout, with the evidence in hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome
    evidence: Evidence
    provider_reference: Ref | None = None  # required for `completed`


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Note = ""


class ProposalOut(Out):
    """A maker-checker proposal: waits for another operator's approval."""

    proposal_id: int
    kind: str = Field(description="`settlement` or `refund_retry`")
    target_id: str
    status: str = Field(description="proposed, approved or superseded")
    body: dict[str, Any]
    proposed_by: str
    proposed_at: Instant
    approved_by: str | None
    approved_at: Instant | None


class RetryProposed(Out):
    """``202``: the retry is proposed; another operator approves it
    (``POST /v1/refunds/{id}/retry/approve``)."""

    payment_id: str
    status: str = Field(description="always `proposed`")
    proposal: ProposalOut


# -- payouts in doubt and their settlement ---------------------------------------------


class InDoubtPayout(Out):
    payout_id: str
    kind: str
    saga_id: str
    loan_id: str
    payment_id: str | None
    msisdn: str
    amount: Money
    currency: str
    provider: str
    deadline: Instant
    in_doubt_since: Instant
    age_s: float = Field(description="seconds in doubt")
    reason: str | None
    queries: int = Field(description="status queries since it went into doubt")
    proposal: ProposalOut | None = Field(description="an operator's settlement waiting "
                                                     "for approval")


class InDoubtPage(Out):
    items: list[InDoubtPayout]
    next_cursor: str | None


class SettlementOut(Out):
    """A settlement proposal (``202``) or its approval (``200``, ``payout`` settled)."""

    payout_id: str
    status: str = Field(description="proposed, approved or superseded")
    proposal: ProposalOut
    payout: PayoutOut | None = None
