"""Bodies of the credit policy: holds, loans in arrears, the last cycle's decision, and
lifting a hold by maker-checker."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.clients.domain.behaviour import LoanBehaviour
from services.clients.repository.behaviour import CycleDecision, Hold, HoldLift
from shared.money import Amount


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500,
                        description="why the client may borrow again")


class HoldOut(BaseModel):
    loan_id: str
    reason: Literal["written_off_loan"]
    status: Literal["active", "lifted"]
    written_off_by: str | None
    placed_at: dt.datetime
    lift_id: str | None
    lifted_at: dt.datetime | None

    @classmethod
    def of(cls, h: Hold) -> HoldOut:
        return cls(loan_id=h.loan_id, reason="written_off_loan",
                   status="lifted" if h.status == "lifted" else "active",
                   written_off_by=h.written_off_by, placed_at=h.placed_at, lift_id=h.lift_id,
                   lifted_at=h.lifted_at)


class ArrearsOut(BaseModel):
    loan_id: str
    days_in_arrears: int
    bucket: str | None
    amount_overdue: Amount | None
    as_of: dt.date | None = Field(description="the business date loans reported it")

    @classmethod
    def of(cls, b: LoanBehaviour) -> ArrearsOut:
        return cls(loan_id=b.loan_id, days_in_arrears=b.days_in_arrears, bucket=b.bucket,
                   amount_overdue=b.amount_overdue, as_of=b.as_of)


class CycleOut(BaseModel):
    loan_id: str
    closed_on: dt.date
    worst_days_in_arrears: int
    move: Literal["grow", "keep", "shrink"]
    previous_limit: Amount
    credit_limit: Amount
    previous_cycle: int
    cycle: int

    @classmethod
    def of(cls, d: CycleDecision) -> CycleOut:
        move: Literal["grow", "keep", "shrink"] = (
            "grow" if d.move == "grow" else "keep" if d.move == "keep" else "shrink")
        return cls(loan_id=d.loan_id, closed_on=d.closed_on, worst_days_in_arrears=d.worst_days,
                   move=move, previous_limit=d.previous_limit, credit_limit=d.credit_limit,
                   previous_cycle=d.previous_cycle, cycle=d.cycle)


class HoldLiftOut(BaseModel):
    id: str
    client_id: str
    status: Literal["pending", "approved"]
    loan_ids: list[str] = Field(description="the holds this request lifts")
    reason: str
    requested_by: str
    requested_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None

    @classmethod
    def of(cls, r: HoldLift) -> HoldLiftOut:
        return cls(id=r.id, client_id=r.client_id,
                   status="approved" if r.status == "approved" else "pending",
                   loan_ids=r.loan_ids, reason=r.reason, requested_by=r.requested_by,
                   requested_at=r.requested_at, approved_by=r.approved_by,
                   approved_at=r.approved_at)
