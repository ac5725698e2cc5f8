"""Request and response bodies. Every route declares its response model, so the OpenAPI
document says what it answers; money is a decimal string (``"5000.00"``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.clients.api.credit_schemas import ArrearsOut, CycleOut, HoldOut
from services.clients.domain.client import Client
from services.clients.domain.credit import CreditAccount
from services.clients.repository.credit import Reservation
from services.clients.repository.groups import Group
from shared.money import Amount


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientIn(Body):
    full_name: str = Field(max_length=200)
    national_id: str = Field(max_length=32, description="Moroccan CIN, e.g. BE123456")
    phone: str = Field(max_length=32, description="06…, 07…, +2126… or +2127…")
    date_of_birth: dt.date
    language: str = Field(max_length=8, description="fr or ar")
    sms_consent: bool
    region: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    partner_id: str | None = Field(
        default=None, max_length=100,
        description="required for operator tokens; a partner token's own id otherwise")
    office_id: str | None = Field(
        default=None, max_length=40,
        description="the client's office; absent: the token's office, else the head office")
    officer_id: str | None = Field(
        default=None, max_length=40,
        description="its loan officer, who works in that office or below it")


class ClientPatch(Body):
    phone: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=8)
    sms_consent: bool | None = None


class KycIn(Body):
    decision: str = Field(description="verified or rejected")
    reason: str | None = Field(default=None, max_length=500)


class ReasonIn(Body):
    reason: str = Field(max_length=500)


class GroupIn(Body):
    name: str = Field(max_length=120)
    leader_id: str = Field(max_length=64)
    member_ids: list[str] = Field(max_length=50)
    office_id: str | None = Field(default=None, max_length=40,
                                  description="absent: the leader's office")
    officer_id: str | None = Field(default=None, max_length=40)


class ClientOut(BaseModel):
    """A client as the platform knows it."""

    id: str
    partner_id: str
    full_name: str
    national_id: str
    phone: str
    date_of_birth: dt.date
    language: Literal["fr", "ar"]
    sms_consent: bool
    region: str | None
    address: str | None
    kyc_status: Literal["pending", "verified", "rejected"]
    kyc_reason: str | None
    kyc_decided_by: str | None
    kyc_decided_at: dt.datetime | None
    blocked: bool
    block_reason: str | None
    onboarded_by: str
    office_id: str
    office_path: str = Field(description="the office's path, ``ho/r-souss/b-agadir``")
    officer_id: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, c: Client) -> ClientOut:
        return cls(
            id=c.id, partner_id=c.partner_id, full_name=c.full_name, national_id=c.national_id,
            phone=c.phone, date_of_birth=c.date_of_birth, language=c.language,
            sms_consent=c.sms_consent, region=c.region, address=c.address,
            kyc_status=c.kyc_status, kyc_reason=c.kyc_reason, kyc_decided_by=c.kyc_decided_by,
            kyc_decided_at=c.kyc_decided_at, blocked=c.blocked, block_reason=c.block_reason,
            onboarded_by=c.onboarded_by, office_id=c.office_id, office_path=c.office_path,
            officer_id=c.officer_id, created_at=c.created_at, updated_at=c.updated_at)


class ClientPage(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")


class ExposureLine(BaseModel):
    loan_id: str
    reservation_id: str
    status: Literal["reserved", "outstanding"] = Field(
        description="reserved (being disbursed) or outstanding (disbursed)")
    amount: Amount = Field(description="the amount reserved for the loan")
    outstanding: Amount = Field(description="principal still owed on a disbursed loan")


class CreditOut(BaseModel):
    """The client's credit limit, what its live loans take of it, and what is left."""

    client_id: str
    currency: str = "MAD"
    credit_limit: Amount
    cycle: int
    reserved: Amount
    outstanding: Amount
    exposure: Amount
    available: Amount
    loans: list[ExposureLine] = Field(default_factory=list,
                                      description="the live loans: reserved or outstanding")
    credit_hold: bool = Field(default=False, description=(
        "a written-off loan holds new credit until two operators lift it"))
    holds: list[HoldOut] = Field(default_factory=list,
                                 description="every hold a written-off loan set, lifted or not")
    loans_in_arrears: list[ArrearsOut] = Field(default_factory=list, description=(
        "loans in arrears: while there is one, new credit is refused"))
    last_cycle: CycleOut | None = Field(default=None, description=(
        "what the last loan repaid did to the limit, by its worst days in arrears"))

    @classmethod
    def of(cls, a: CreditAccount, live: list[Reservation]) -> CreditOut:
        return cls(client_id=a.client_id, credit_limit=a.credit_limit, cycle=a.cycle,
                   reserved=a.reserved, outstanding=a.outstanding, exposure=a.exposure,
                   available=a.available,
                   loans=[ExposureLine(loan_id=r.loan_id, reservation_id=r.reservation_id,
                                       status=r.status, amount=r.amount,
                                       outstanding=r.outstanding) for r in live])


class GroupOut(BaseModel):
    id: str
    partner_id: str
    name: str
    leader_id: str
    status: Literal["active", "dissolved"]
    member_ids: list[str]
    formed_by: str
    office_id: str
    office_path: str
    officer_id: str | None
    created_at: dt.datetime
    dissolved_at: dt.datetime | None
    live_group_loan_ids: list[str] = Field(default_factory=list, description=(
        "the group's live group loans, as loans reported them: while there is one, the "
        "group cannot be dissolved and no member can be removed (409)"))

    @classmethod
    def of(cls, g: Group) -> GroupOut:
        return cls(id=g.id, partner_id=g.partner_id, name=g.name, leader_id=g.leader_id,
                   status=g.status, member_ids=g.member_ids, formed_by=g.formed_by,
                   office_id=g.office_id, office_path=g.office_path, officer_id=g.officer_id,
                   created_at=g.created_at, dissolved_at=g.dissolved_at,
                   live_group_loan_ids=list(g.live_group_loan_ids))
