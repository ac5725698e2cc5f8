"""``/v1/group-loans``: a solidarity group's application (one loan per member), its
maker-checker approval (one disbursement saga for the group), and the group loan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field, StrictBool, StrictInt

from services.loans.api.deps import runtime, settings
from services.loans.api.schemas import Body, Money, Out
from services.loans.handlers import group_loans as handlers
from shared.auth import Principal, require
from shared.clock import business_date
from shared.money import PositiveAmount

router = APIRouter(prefix="/v1/group-loans", tags=["group loans"])


class MemberIn(Body):
    client_id: Annotated[str, Field(min_length=1, max_length=100)]
    principal: PositiveAmount


class GroupLoanIn(Body):
    group_id: Annotated[str, Field(min_length=1, max_length=100)]
    product_id: Annotated[str, Field(min_length=1, max_length=100)]
    term: StrictInt
    members: Annotated[list[MemberIn], Field(min_length=1, max_length=10)]
    cover_arrears: StrictBool = False
    arrears_tolerance_days: Annotated[StrictInt, Field(ge=0, le=365)] = 0


class ReasonIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class MemberOut(Out):
    loan_id: str
    client_id: str
    status: str
    principal: Money
    principal_outstanding: Money
    days_in_arrears: int


class GroupSagaOut(Out):
    id: str
    state: str
    reason: str | None
    to_recover: list[str]


class GroupLoanOut(Out):
    id: str
    group_id: str
    product_id: str
    status: str
    cycle: int
    cover_arrears: bool
    arrears_tolerance_days: int
    in_arrears: bool
    submitted_by: str
    decided_by: str | None
    office_id: str
    total_principal: Money
    members: list[MemberOut]
    saga: GroupSagaOut | None
    saga_id: str | None = None


@router.post("", status_code=201, response_model=GroupLoanOut)
async def apply(body: GroupLoanIn, request: Request,
                who: Annotated[Principal, require("loans:write")]) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        out = await handlers.apply(
            uow, who, group_id=body.group_id, product_id=body.product_id, term=body.term,
            members=[(m.client_id, m.principal) for m in body.members],
            cover_arrears=body.cover_arrears, tolerance_days=body.arrears_tolerance_days,
            today=business_date(datetime.now(UTC)),
            purpose_ceilings=settings(request).purpose_ceilings)
        await uow.commit()
    return out


@router.post("/{group_loan_id}/approve", response_model=GroupLoanOut)
async def approve(group_loan_id: str, request: Request,
                  who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        out = await handlers.approve(uow, who, group_loan_id, settings(request).saga_policy())
        await uow.commit()
    return out


@router.post("/{group_loan_id}/reject", response_model=GroupLoanOut)
async def reject(group_loan_id: str, body: ReasonIn, request: Request,
                 who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        out = await handlers.reject(uow, who, group_loan_id, body.reason)
        await uow.commit()
    return out


@router.get("/{group_loan_id}", response_model=GroupLoanOut)
async def show(group_loan_id: str, request: Request,
               who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        return await handlers.show(uow, who, group_loan_id)
