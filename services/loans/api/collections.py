"""Maker-checker requests on loans: write-offs (proposed on the loan) and waivers of late
charges; a second operator approves or rejects them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from services.loans.api import cursors
from services.loans.api.deps import operator_only, runtime, settings
from services.loans.api.loans import today
from services.loans.api.schemas import DecisionIn, LoanRequestOut, LoanRequestPage, WaiverIn
from services.loans.handlers import applications, collections
from services.loans.repository import loan_requests as requests_repo
from services.loans.repository import request_listings
from shared.auth import Principal, require
from shared.uow import UnitOfWork

router = APIRouter(tags=["loan requests"])


@router.post("/v1/loans/{loan_id}/waivers", status_code=202, response_model=LoanRequestOut)
async def propose_waiver(loan_id: str, body: WaiverIn, request: Request,
                         who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    """Propose waiving late charges (all of them, or ``amount``, oldest first); another
    operator approves it."""
    operator_only(who)
    uow: UnitOfWork
    async with runtime(request).uow() as uow:
        loan = await applications.load_visible(uow, who, loan_id, for_update=True)
        result = await collections.propose_waiver(uow, who, loan, body.amount, body.reason)
        await uow.commit()
    return result


class LoanRequestCursorPage(LoanRequestPage):
    next_cursor: str | None = Field(default=None, description=(
        "pass back as ``cursor`` for the next page (null on the last one)"))


REQUESTS_QUEUE = "requests_oldest"


@router.get("/v1/loan-requests", response_model=LoanRequestCursorPage)
async def list_requests(
    request: Request, who: Annotated[Principal, require("loans:read")],
    status: Literal["pending", "approved", "rejected"] | None = None,
    kind: Literal["write_off", "waiver"] | None = None,
    loan_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> dict[str, Any]:
    """The approvals queue, oldest proposal first, keyset-paged; an office's token sees
    its subtree's loans only."""
    operator_only(who)
    after = cursors.decode(cursor, REQUESTS_QUEUE) if cursor is not None else None
    async with runtime(request).pool.acquire() as conn:
        rows = await request_listings.loan_requests_page(
            conn, status=status, kind=kind, loan_id=loan_id, after=after, limit=limit + 1,
            office_path=who.office_path)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [requests_repo.request_json(r) for r in rows],
            "next_cursor": cursors.encode(REQUESTS_QUEUE, rows[-1]["proposed_at"],
                                          rows[-1]["id"]) if more else None}


async def _decide(request: Request, who: Principal, request_id: str, approve: bool,
                  reason: str = "") -> dict[str, Any]:
    operator_only(who)
    min_days = settings(request).write_off_min_days_in_arrears
    uow: UnitOfWork
    async with runtime(request).uow() as uow:
        result = await collections.decide_request(
            uow, who, request_id, approve=approve, min_days_in_arrears=min_days,
            today=today(), reason=reason)
        await uow.commit()
    return result


@router.post("/v1/loan-requests/{request_id}/approve", response_model=LoanRequestOut)
async def approve(request_id: str, request: Request,
                  who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    """Another operator than the proposer (else 403) carries the request out."""
    return await _decide(request, who, request_id, True)


@router.post("/v1/loan-requests/{request_id}/reject", response_model=LoanRequestOut)
async def reject(request_id: str, body: DecisionIn, request: Request,
                 who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
    return await _decide(request, who, request_id, False, body.reason)
