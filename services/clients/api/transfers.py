"""``/v1/transfers`` and ``/v1/officer-reassignments``: maker-checker requests.

One operator proposes, another approves (the proposer gets 403) or rejects; the
approval moves the client(s) and publishes the events through the outbox. The lists
are the approvals queue: pending requests, oldest first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.clients.api.deps import runtime
from services.clients.api.org_schemas import (
    ReassignmentIn,
    RejectIn,
    RequestOut,
    RequestPage,
    TransferIn,
)
from services.clients.domain.transfer import RequestKind
from services.clients.handlers import transfers as handlers
from services.clients.repository import requests as repo
from shared.auth import Principal, require

router = APIRouter(tags=["organisation"])

Reader = Annotated[Principal, require("tenant:all", "clients:read")]
Operator = Annotated[Principal, require("tenant:all", "clients:write")]
Status = Annotated[str, Query(pattern="^(pending|approved|rejected)$",
                              description="pending (the approvals queue), approved or rejected")]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


async def _page(request: Request, principal: Principal, kind: RequestKind, status: str,
                limit: int, cursor: str | None) -> RequestPage:
    async with runtime(request).uow() as uow:
        found, nxt = await repo.list_requests(uow.conn, kind=kind, status=status,
                                              within=principal.office_path, limit=limit,
                                              cursor=cursor)
    return RequestPage(items=[RequestOut.of(r) for r in found], next_cursor=nxt)


async def _get(request: Request, principal: Principal, request_id: str, kind: RequestKind
               ) -> RequestOut:
    async with runtime(request).uow() as uow:
        return RequestOut.of(await handlers.get(uow, principal, request_id, kind))


async def _reject(request: Request, principal: Principal, request_id: str, kind: RequestKind,
                  body: RejectIn) -> RequestOut:
    async with runtime(request).uow() as uow:
        r = await handlers.reject(uow, principal, request_id, kind, body.reason)
        await uow.commit()
    return RequestOut.of(r)


# --- transfers ----------------------------------------------------------------

@router.post("/v1/transfers", status_code=201, response_model=RequestOut, tags=["transfers"])
async def propose_transfer(body: TransferIn, request: Request, principal: Operator
                           ) -> RequestOut:
    async with runtime(request).uow() as uow:
        r = await handlers.propose_transfer(uow, principal, client_id=body.client_id,
                                            to_office_id=body.to_office_id,
                                            to_officer_id=body.to_officer_id,
                                            reason=body.reason)
        await uow.commit()
    return RequestOut.of(r)


@router.get("/v1/transfers", response_model=RequestPage)
async def list_transfers(request: Request, principal: Reader, status: Status = "pending",
                         limit: Limit = 50, cursor: Cursor = None) -> RequestPage:
    return await _page(request, principal, "transfer", status, limit, cursor)


@router.get("/v1/transfers/{request_id}", response_model=RequestOut)
async def get_transfer(request_id: str, request: Request, principal: Reader) -> RequestOut:
    return await _get(request, principal, request_id, "transfer")


@router.post("/v1/transfers/{request_id}/approve", response_model=RequestOut)
async def approve_transfer(request_id: str, request: Request, principal: Operator
                           ) -> RequestOut:
    async with runtime(request).uow() as uow:
        r = await handlers.approve_transfer(uow, principal, request_id)
        await uow.commit()
    return RequestOut.of(r)


@router.post("/v1/transfers/{request_id}/reject", response_model=RequestOut)
async def reject_transfer(request_id: str, body: RejectIn, request: Request,
                          principal: Operator) -> RequestOut:
    return await _reject(request, principal, request_id, "transfer", body)


# --- reassignments --------------------------------------------------------------

@router.post("/v1/officer-reassignments", status_code=201, response_model=RequestOut)
async def propose_reassignment(body: ReassignmentIn, request: Request, principal: Operator
                               ) -> RequestOut:
    async with runtime(request).uow() as uow:
        r = await handlers.propose_reassignment(
            uow, principal, from_officer_id=body.from_officer_id,
            to_officer_id=body.to_officer_id, reason=body.reason)
        await uow.commit()
    return RequestOut.of(r)


@router.get("/v1/officer-reassignments", response_model=RequestPage)
async def list_reassignments(request: Request, principal: Reader, status: Status = "pending",
                             limit: Limit = 50, cursor: Cursor = None) -> RequestPage:
    return await _page(request, principal, "reassignment", status, limit, cursor)


@router.get("/v1/officer-reassignments/{request_id}", response_model=RequestOut)
async def get_reassignment(request_id: str, request: Request, principal: Reader
                           ) -> RequestOut:
    return await _get(request, principal, request_id, "reassignment")


@router.post("/v1/officer-reassignments/{request_id}/approve", response_model=RequestOut)
async def approve_reassignment(request_id: str, request: Request, principal: Operator
                               ) -> RequestOut:
    async with runtime(request).uow() as uow:
        r = await handlers.approve_reassignment(uow, principal, request_id)
        await uow.commit()
    return RequestOut.of(r)


@router.post("/v1/officer-reassignments/{request_id}/reject", response_model=RequestOut)
async def reject_reassignment(request_id: str, body: RejectIn, request: Request,
                              principal: Operator) -> RequestOut:
    return await _reject(request, principal, request_id, "reassignment", body)
