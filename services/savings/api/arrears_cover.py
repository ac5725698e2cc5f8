"""A group's compulsory savings cover a member's arrears: the maker's request, the
checker's approval (the money moves then) or rejection, and the requests' list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request

from services.savings.api.deps import keyed_write, runtime, today
from services.savings.api.schemas import (
    ArrearsCoverIn,
    ArrearsCoverOut,
    ArrearsCoverPage,
    ReasonIn,
)
from services.savings.handlers import arrears_cover as handlers
from services.savings.repository import arrears_cover as repo
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/savings", tags=["group arrears cover"])

Reader = Annotated[Principal, require("savings:read")]
Writer = Annotated[Principal, require("savings:write")]
Checker = Annotated[Principal, require("savings:approve")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return ArrearsCoverOut.of(row).model_dump(mode="json")


@router.post("/groups/{group_id}/arrears-cover-requests", status_code=201,
             response_model=ArrearsCoverOut)
async def request_cover(group_id: str, body: ArrearsCoverIn, request: Request, who: Writer,
                        idempotency_key: IdempotencyKey = None) -> Any:
    """Ask that compulsory savings pay what the member's loan has overdue: the member's
    own first, then the other members' when the group's rule allows it. 409 when nothing
    is overdue or the savings are not enough (nothing recorded); a checker approves."""
    async with keyed_write(request, who, "arrears-cover", idempotency_key,
                           {"group_id": group_id, **body.model_dump(mode="json")}) as write:
        if write.replay is not None:
            return write.replay
        row = await handlers.request_cover(write.uow, who, group_id, body.loan_id)
        return await write.done(201, _out(row))


@router.get("/arrears-cover-requests", response_model=ArrearsCoverPage)
async def list_requests(
    request: Request, who: Reader,
    status: Literal["pending", "approved", "rejected"] | None = None,
    group_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ArrearsCoverPage:
    """Newest first; ``status=pending`` is what waits for a checker."""
    partner = None if who.sees_all_tenants else (who.partner_id or "")
    async with runtime(request).pool.acquire() as conn:
        rows = await repo.list_for(conn, status=status, group_id=group_id, partner_id=partner,
                                   office_path=who.office_path, limit=limit)
    return ArrearsCoverPage(items=[ArrearsCoverOut.of(r) for r in rows])


@router.get("/arrears-cover-requests/{request_id}", response_model=ArrearsCoverOut)
async def get_request(request_id: str, request: Request, who: Reader) -> ArrearsCoverOut:
    async with runtime(request).uow() as uow:
        return ArrearsCoverOut.of(await handlers.get(uow, who, request_id))


@router.post("/arrears-cover-requests/{request_id}/approve", response_model=ArrearsCoverOut)
async def approve(request_id: str, request: Request, who: Checker,
                  idempotency_key: IdempotencyKey = None) -> Any:
    """The checker (not the maker): the savings pay the loan now, each account's part a
    repayment through payments. 409 (nothing moves) when the savings no longer cover
    what is overdue."""
    async with keyed_write(request, who, "arrears-cover-approve", idempotency_key,
                           {"request_id": request_id}) as write:
        if write.replay is not None:
            return write.replay
        row = await handlers.approve(write.uow, who, request_id, today=today(request))
        return await write.done(200, _out(row))


@router.post("/arrears-cover-requests/{request_id}/reject", response_model=ArrearsCoverOut)
async def reject(request_id: str, body: ReasonIn, request: Request, who: Checker
                 ) -> ArrearsCoverOut:
    async with runtime(request).uow() as uow:
        row = await handlers.reject(uow, who, request_id, body.reason)
        await uow.commit()
    return ArrearsCoverOut.of(row)
