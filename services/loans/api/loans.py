"""Applications, decisions and the loan views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.loans.api import cursors
from services.loans.api.deps import runtime, settings
from services.loans.api.schemas import (
    ApprovedLoanOut,
    DecisionIn,
    LoanApplicationIn,
    LoanApplicationOut,
    LoanOut,
    LoanPage,
    LoanRequestOut,
    OptionalReasonIn,
    ScheduleOut,
)
from services.loans.domain.loan import LoanStatus
from services.loans.handlers import applications, collections
from services.loans.handlers.views import loan_json
from services.loans.repository import loans as loans_repo
from services.loans.repository import schedules as schedules_repo
from shared import idempotency
from shared.auth import Principal, require
from shared.clock import business_date
from shared.errors import InvalidInput
from shared.uow import UnitOfWork

router = APIRouter(prefix="/v1/loans", tags=["loans"])


def today() -> Any:
    """Today's business day: the local date in Africa/Casablanca."""
    return business_date(datetime.now(UTC))


@router.post("", status_code=201, response_model=LoanApplicationOut)
async def apply_for_loan(
    body: LoanApplicationIn, request: Request,
    who: Annotated[Principal, require("loans:write")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Submit an application; the answer carries the schedule preview. The same
    ``Idempotency-Key`` and body again answers the first response."""
    raw = body.model_dump(mode="json")
    async with runtime(request).uow() as uow:
        scope = f"loans.apply:{who.partner_id or who.sub}"
        if idempotency_key is not None:
            key = idempotency.check_key(idempotency_key)
            replay = await idempotency.begin(uow, scope, key, raw)
            if replay is not None:
                return JSONResponse(replay.body, status_code=replay.status)
        result = await applications.submit(
            uow, who, client_id=body.client_id, product_id=body.product_id,
            principal=body.principal, term=body.term, today=today(),
            purpose=None if body.purpose is None else body.purpose.value,
            purpose_ceilings=settings(request).purpose_ceilings)
        if idempotency_key is not None:
            await idempotency.complete(uow, scope, key, 201, result)
        await uow.commit()
    return result


@router.get("", response_model=LoanPage)
async def list_loans(
    request: Request, who: Annotated[Principal, require("loans:read")],
    client_id: str | None = None, status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100, after: str | None = None,
    order: loans_repo.LoanOrder = loans_repo.LoanOrder.ID,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> dict[str, Any]:
    """Loans by id (default; ``after`` = the last id seen) or ``order=submitted``, oldest
    application first. ``next_cursor`` (and ``next_after`` by id) is null on the last page."""
    if status is not None and status not in {s.value for s in LoanStatus}:
        raise InvalidInput(f"unknown status {status!r}", field="status")
    if after is not None and (cursor is not None or order is not loans_repo.LoanOrder.ID):
        raise InvalidInput("``after`` pages the id order only; pass ``cursor``",
                           field="after")
    after_submitted = None
    if cursor is not None:
        at, after = cursors.decode(cursor, order.value)
        after_submitted = at if order is loans_repo.LoanOrder.SUBMITTED else None
    partner = None if who.sees_all_tenants else who.partner_id or "-"
    async with runtime(request).pool.acquire() as conn:
        page = await loans_repo.list_loans(
            conn, partner_id=partner, client_id=client_id, status=status, limit=limit,
            after=after, order=order, after_submitted=after_submitted,
            office_path=who.office_path)
        items = page.items
        schedules = await loans_repo.installments_for(conn, [loan.id for loan in items])
        extra = await schedules_repo.servicing(conn, [loan.id for loan in items])
        out = [loan_json(loan, schedules[loan.id], servicing=extra.get(loan.id))
               for loan in items]
    last = items[-1] if page.more else None
    next_cursor = None
    if last is not None:
        assert last.submitted_at is not None
        next_cursor = cursors.encode(order.value, last.submitted_at, last.id)
    return {"items": out,
            "next_after": last.id if last is not None and order is loans_repo.LoanOrder.ID
            else None,
            "next_cursor": next_cursor}


async def _decide(request: Request, action: Any) -> dict[str, Any]:
    uow: UnitOfWork
    async with runtime(request).uow() as uow:
        result: dict[str, Any] = await action(uow)
        await uow.commit()
    return result


@router.get("/{loan_id}", response_model=LoanOut)
async def get_loan(loan_id: str, request: Request,
                   who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        return await applications.show(uow, who, loan_id)


@router.get("/{loan_id}/schedule", response_model=ScheduleOut)
async def get_schedule(loan_id: str, request: Request,
                       who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        body = await applications.show(uow, who, loan_id, with_schedule=True)
        body["repayments"] = await loans_repo.repayments(uow.conn, body["id"])
    return {"loan_id": body["id"], "status": body["status"], "installments": body["schedule"],
            "total_repayable": body["total_repayable"], "outstanding": body["outstanding"],
            "repayments": body["repayments"]}


@router.post("/{loan_id}/approve", response_model=ApprovedLoanOut)
async def approve(loan_id: str, request: Request,
                  who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    policy = settings(request).saga_policy()
    return await _decide(request, lambda uow: applications.approve(uow, who, loan_id, policy))


@router.post("/{loan_id}/reject", response_model=LoanOut)
async def reject(loan_id: str, body: DecisionIn, request: Request,
                 who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    return await _decide(request,
                         lambda uow: applications.reject(uow, who, loan_id, body.reason))


@router.post("/{loan_id}/withdraw", response_model=LoanOut)
async def withdraw(loan_id: str, body: OptionalReasonIn, request: Request,
                   who: Annotated[Principal, require("loans:write")]) -> dict[str, Any]:
    return await _decide(request, lambda uow: applications.withdraw(
        uow, who, loan_id, body.reason or "withdrawn by the applicant"))


@router.post("/{loan_id}/write-off", status_code=202, response_model=LoanRequestOut)
async def write_off(loan_id: str, body: OptionalReasonIn, request: Request,
                    who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    """Propose a write-off (maker-checker): another operator approves it with
    ``POST /v1/loan-requests/{id}/approve``; nothing is written off before."""
    min_days = settings(request).write_off_min_days_in_arrears

    async def propose(uow: UnitOfWork) -> dict[str, Any]:
        loan = await applications.load_visible(uow, who, loan_id, for_update=True)
        return await collections.propose_write_off(uow, who, loan, body.reason or "written off",
                                                   min_days_in_arrears=min_days)
    return await _decide(request, propose)
