"""Servicing a disbursed loan: payoff quotes, schedule versions, rescheduling requests."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field, StrictBool, StrictInt

from services.loans.api import cursors
from services.loans.api.deps import operator_only, runtime
from services.loans.api.schemas import Body, Out, PayoffOut, ScheduleVersionPage, Timestamp
from services.loans.domain.loan import LoanStatus
from services.loans.handlers import applications, restructuring, servicing
from services.loans.repository import loans as loans_repo
from services.loans.repository import products as products_repo
from services.loans.repository import request_listings
from services.loans.repository import schedules as schedules_repo
from shared.auth import Principal, require
from shared.errors import Conflict

router = APIRouter(tags=["servicing"])


@router.get("/v1/loans/{loan_id}/payoff", response_model=PayoffOut)
async def payoff(loan_id: str, request: Request,
                 who: Annotated[Principal, require("loans:read")],
                 date: Annotated[dt.date | None, Query(description=(
                     "the date of the quote (default: the business date)"))] = None,
                 ) -> dict[str, Any]:
    """What a payment on ``date`` must reach to close the loan, and the interest waived."""
    async with runtime(request).uow() as uow:
        loan = await applications.load_visible(uow, who, loan_id)
        if loan.status is not LoanStatus.ACTIVE:
            raise Conflict(f"only an active loan has a payoff; the loan is "
                           f"{loan.status.value}", field="loan_id",
                           status_now=loan.status.value)
        product = await products_repo.get(uow.conn, loan.product_id, loan.product_version)
        assert product is not None
        items = await loans_repo.installments(uow.conn, loan.id)
        as_of = date or await restructuring.business_day(uow.conn)
        return servicing.payoff_json(loan, servicing.quote(loan, product.terms, items, as_of))


@router.get("/v1/loans/{loan_id}/schedule/versions", response_model=ScheduleVersionPage)
async def schedule_versions(loan_id: str, request: Request,
                            who: Annotated[Principal, require("loans:read")]
                            ) -> dict[str, Any]:
    """Every earlier version of the schedule, as it was when it was replaced."""
    async with runtime(request).uow() as uow:
        loan = await applications.load_visible(uow, who, loan_id)
        items = await schedules_repo.versions(uow.conn, loan.id)
        current = (await schedules_repo.servicing(uow.conn, [loan.id]))[loan.id]
    return {"loan_id": loan.id, "current_version": current["schedule_version"],
            "items": items}


class RescheduleIn(Body):
    term: StrictInt | None = Field(default=None, description=(
        "installments that repay after the moratorium (default: the open installments)"))
    grace: StrictInt = Field(default=0, description="of those, how many pay interest only")
    moratorium: StrictInt = Field(default=0, description="periods with nothing to pay first")
    capitalise_interest: StrictBool = False
    cure_installments: Annotated[StrictInt, Field(ge=0, le=60)] = 3
    reason: Annotated[str, Field(max_length=500)] = ""


class BulkMoratoriumIn(Body):
    loan_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]],
                        Field(min_length=1, max_length=10000)] | None = None
    partner_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    moratorium: Annotated[StrictInt, Field(ge=1, le=24)]
    capitalise_interest: StrictBool = False
    cure_installments: Annotated[StrictInt, Field(ge=0, le=60)] = 3
    reason: Annotated[str, Field(max_length=500)] = ""


class RescheduleRequestOut(Out):
    id: str
    kind: str
    loan_id: str | None
    status: str
    params: dict[str, Any]
    preview: dict[str, Any] = Field(description=(
        "one loan: the new installments, principal before and after, capitalised "
        "interest, TEG; bulk: the loans it names now"))
    requested_by: str
    decided_by: str | None
    decided_at: Timestamp | None
    result: dict[str, Any]
    created_at: Timestamp


class RescheduleRequestPage(Out):
    items: list[RescheduleRequestOut]
    next_cursor: str | None = Field(description=(
        "pass back as ``cursor`` for the next page (null on the last one)"))


RESCHEDULE_QUEUE = "reschedule_oldest"


@router.get("/v1/reschedule-requests", response_model=RescheduleRequestPage)
async def list_reschedule_requests(
    request: Request, who: Annotated[Principal, require("loans:read")],
    status: Literal["pending", "approved", "rejected"] | None = None,
    kind: Literal["loan", "bulk"] | None = None,
    loan_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> dict[str, Any]:
    """The rescheduling queue, oldest request first (``status=pending``: what waits for a
    second operator). An office's token sees its subtree's loans only, a partner its own
    loans; a bulk request shows when every loan it names is visible."""
    after = cursors.decode(cursor, RESCHEDULE_QUEUE) if cursor is not None else None
    partner = None if who.sees_all_tenants else who.partner_id or "-"
    async with runtime(request).pool.acquire() as conn:
        rows = await request_listings.reschedule_page(
            conn, status=status, kind=kind, loan_id=loan_id, after=after, limit=limit + 1,
            office_path=who.office_path, partner_id=partner)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [restructuring.request_json(r) for r in rows],
            "next_cursor": cursors.encode(RESCHEDULE_QUEUE, rows[-1]["created_at"],
                                          rows[-1]["id"]) if more else None}


async def _write(request: Request, action: Any) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        result: dict[str, Any] = await action(uow)
        await uow.commit()
    return result


@router.post("/v1/loans/{loan_id}/reschedule", status_code=201,
             response_model=RescheduleRequestOut)
async def request_reschedule(loan_id: str, body: RescheduleIn, request: Request,
                             who: Annotated[Principal, require("loans:write")]
                             ) -> dict[str, Any]:
    """Ask for a rescheduling/restructuring: the answer is its preview; a second operator
    approves it (``POST /v1/reschedule-requests/{id}/approve``)."""
    operator_only(who)

    async def act(uow: Any) -> dict[str, Any]:
        loan = await applications.load_visible(uow, who, loan_id)
        return await restructuring.request_reschedule(uow, who, loan,
                                                      body.model_dump())
    return await _write(request, act)


@router.post("/v1/reschedule-requests/bulk-moratorium", status_code=201,
             response_model=RescheduleRequestOut)
async def request_bulk_moratorium(body: BulkMoratoriumIn, request: Request,
                                  who: Annotated[Principal, require("loans:write")]
                                  ) -> dict[str, Any]:
    """A moratorium for every active loan named (by id, or by partner): one request, one
    approval by a second operator."""
    operator_only(who)
    return await _write(request, lambda uow: restructuring.request_bulk(
        uow, who, body.model_dump()))


@router.get("/v1/reschedule-requests/{request_id}", response_model=RescheduleRequestOut)
async def get_request(request_id: str, request: Request,
                      who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    operator_only(who)
    async with runtime(request).uow() as uow:
        return await restructuring.get_request(uow, request_id)


@router.post("/v1/reschedule-requests/{request_id}/approve",
             response_model=RescheduleRequestOut)
async def approve_request(request_id: str, request: Request,
                          who: Annotated[Principal, require("loans:approve")]
                          ) -> dict[str, Any]:
    """Maker-checker: the operator who asked gets a 403."""
    operator_only(who)
    return await _write(request, lambda uow: restructuring.decide(uow, who, request_id, True))


@router.post("/v1/reschedule-requests/{request_id}/reject",
             response_model=RescheduleRequestOut)
async def reject_request(request_id: str, request: Request,
                         who: Annotated[Principal, require("loans:approve")]
                         ) -> dict[str, Any]:
    operator_only(who)
    return await _write(request, lambda uow: restructuring.decide(uow, who, request_id, False))
