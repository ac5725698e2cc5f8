"""Manual journals by maker-checker, period close and year-end close."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.payments import state
from services.payments.api.accounting import READ, WRITE
from services.payments.api.accounting_schemas import DecisionIn, JournalIn
from services.payments.api.deps import runtime
from services.payments.api.schemas import money_strings
from services.payments.domain import journals as rules
from services.payments.domain.accounts import Side
from services.payments.handlers import journals as handlers
from services.payments.repository import periods as repo
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import InvalidInput, NotFound

APPROVE = ("ledger:approve", "tenant:all")
Reader = Annotated[Principal, require(*READ)]
Writer = Annotated[Principal, require(*WRITE)]
Approver = Annotated[Principal, require(*APPROVE)]

router = APIRouter(tags=["accounting"])


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(money_strings(body), status_code=status)


def _view(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["id"] = str(out["id"])
    return out


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no journal {value[:60]}", field="id") from None


def _today(request: Request) -> Any:
    return today(state.clock(runtime(request).state))


@router.post("/v1/journals", status_code=201, summary="Propose a manual journal entry")
async def propose(body: JournalIn, request: Request, principal: Writer) -> JSONResponse:
    lines = [rules.JournalLine(ln.gl_code, Side(ln.side), ln.amount) for ln in body.lines]
    async with runtime(request).uow() as uow:
        row = await handlers.propose(uow.conn, day=body.business_date, reason=body.reason,
                                     attachments=list(body.attachments), lines=lines,
                                     office_id=body.office_id, by=principal.sub)
        await uow.commit()
    return _json(_view(row), 201)


@router.post("/v1/journals/{journal_id}/approve",
             summary="Approve and post a journal (another operator than its maker)")
async def approve(journal_id: str, request: Request, principal: Approver,
                  body: DecisionIn | None = None) -> JSONResponse:
    async with runtime(request).uow() as uow:
        row = await handlers.approve(uow.conn, _uuid(journal_id), principal.sub,
                                     body.note if body else None)
        await uow.commit()
    return _json(_view(row))


@router.post("/v1/journals/{journal_id}/reject", summary="Reject a proposed journal")
async def reject(journal_id: str, request: Request, principal: Approver,
                 body: DecisionIn | None = None) -> JSONResponse:
    async with runtime(request).uow() as uow:
        row = await handlers.reject(uow.conn, _uuid(journal_id), principal.sub,
                                    body.note if body else None)
        await uow.commit()
    return _json(_view(row))


@router.get("/v1/journals", summary="Manual journals, newest first")
async def journals(request: Request, principal: Reader,
                   status: Literal["proposed", "approved", "rejected"] | None = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        rows = await repo.journals(conn, status, limit)
    return _json({"items": [_view(r) for r in rows]})


@router.get("/v1/journals/{journal_id}", summary="A manual journal")
async def journal(journal_id: str, request: Request, principal: Reader) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        row = await repo.journal(conn, _uuid(journal_id))
    if row is None:
        raise NotFound(f"no journal {journal_id}", field="id")
    return _json(_view(row))


@router.get("/v1/periods", summary="Closed accounting periods")
async def periods(request: Request, principal: Reader) -> JSONResponse:
    async with runtime(request).pool.acquire() as conn:
        return _json({"closed": await repo.periods(conn)})


@router.post("/v1/periods/{period}/close",
             summary="Close a month: nothing dated in it can be posted any more")
async def close_period(period: str, request: Request, principal: Approver) -> JSONResponse:
    async with runtime(request).uow() as uow:
        row, created = await handlers.close_period(uow.conn, period, principal.sub,
                                                   _today(request))
        await uow.commit()
    return _json({**dict(row), "created": created}, 201 if created else 200)


@router.post("/v1/years/{year}/close",
             summary="Year-end close: income and expenses to retained earnings")
async def close_year(year: int, request: Request, principal: Approver) -> JSONResponse:
    if not 1900 <= year <= 9999:
        raise InvalidInput("a year between 1900 and 9999", field="year")
    async with runtime(request).uow() as uow:
        out = await handlers.close_year(uow.conn, year, principal.sub, _today(request))
        await uow.commit()
    return _json(out, 201 if out["created"] else 200)
