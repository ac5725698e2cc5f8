"""Manual journals by maker-checker, period close and year-end close.

Proposing a journal and closing a period or a year take an ``Idempotency-Key``
(required); approving or rejecting a journal takes one when given."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.payments import state
from services.payments.api.accounting import READ, WRITE, IdempotencyKey, both, once
from services.payments.api.accounting_out import (
    JournalOut,
    JournalPage,
    PeriodClose,
    Periods,
    YearClose,
)
from services.payments.api.accounting_schemas import DecisionIn, JournalIn
from services.payments.api.deps import runtime
from services.payments.api.office_scope import offices_for
from services.payments.api.paging import decode_cursor, encode_cursor
from services.payments.api.schemas import money_strings
from services.payments.domain import journals as rules
from services.payments.domain.accounts import Side
from services.payments.handlers import journals as handlers
from services.payments.repository import periods as repo
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import InvalidInput, NotFound
from shared.uow import UnitOfWork

APPROVE = ("ledger:approve", "tenant:all")
Reader = Annotated[Principal, require(*READ)]
Writer = Annotated[Principal, require(*WRITE)]
Approver = Annotated[Principal, require(*APPROVE)]

router = APIRouter(tags=["accounting"])


def _view(row: Any) -> JournalOut:
    out = dict(row)
    out["id"] = str(out["id"])
    return JournalOut.model_validate(money_strings(out))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no journal {value[:60]}", field="id") from None


def _today(request: Request) -> Any:
    return today(state.clock(runtime(request).state))


@router.post("/v1/journals", status_code=201, response_model=JournalOut,
             summary="Propose a manual journal entry")
async def propose(body: JournalIn, request: Request, principal: Writer,
                  idempotency_key: IdempotencyKey = None) -> JSONResponse:
    lines = [rules.JournalLine(ln.gl_code, Side(ln.side), ln.amount) for ln in body.lines]

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        row = await handlers.propose(uow.conn, day=body.business_date, reason=body.reason,
                                     attachments=list(body.attachments), lines=lines,
                                     office_id=body.office_id, by=principal.sub)
        return _view(row), 201

    # one operator's key: another operator's proposal under the same key is their own
    return await once(request, f"journal:{principal.sub}", idempotency_key,
                      body.model_dump(mode="json"), work)


async def _decide(request: Request, journal_id: str, principal: Principal,
                  body: DecisionIn | None, key: str | None, decision: str) -> JSONResponse:
    ident = _uuid(journal_id)
    note = body.note if body else None

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        decide = handlers.approve if decision == "approve" else handlers.reject
        return _view(await decide(uow.conn, ident, principal.sub, note)), 200

    if key is not None:
        return await once(request, f"journal-{decision}:{ident}", key,
                          {"note": note}, work)
    async with runtime(request).uow() as uow:
        out, status = await work(uow)
        await uow.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=status)


@router.post("/v1/journals/{journal_id}/approve", response_model=JournalOut,
             summary="Approve and post a journal (another operator than its maker)")
async def approve(journal_id: str, request: Request, principal: Approver,
                  body: DecisionIn | None = None,
                  idempotency_key: IdempotencyKey = None) -> JSONResponse:
    return await _decide(request, journal_id, principal, body, idempotency_key, "approve")


@router.post("/v1/journals/{journal_id}/reject", response_model=JournalOut,
             summary="Reject a proposed journal")
async def reject(journal_id: str, request: Request, principal: Approver,
                 body: DecisionIn | None = None,
                 idempotency_key: IdempotencyKey = None) -> JSONResponse:
    return await _decide(request, journal_id, principal, body, idempotency_key, "reject")


@router.get("/v1/journals", response_model=JournalPage,
            summary="Manual journals, oldest first (a queue), keyset-paged")
async def journals(request: Request, principal: Reader,
                   status: Literal["proposed", "approved", "rejected"] | None = None,
                   order: Literal["asc", "desc"] = "asc",
                   limit: Annotated[int, Query(ge=1, le=500)] = 100,
                   cursor: Annotated[str | None, Query(max_length=200)] = None
                   ) -> JournalPage:
    after = decode_cursor(cursor)
    async with runtime(request).pool.acquire() as conn:
        offices = await offices_for(conn, principal, None)
        rows = await repo.journals(conn, status, limit + 1, after=after,
                                   newest_first=order == "desc", offices=offices)
    page = rows[:limit]
    more = len(rows) > limit
    return JournalPage(items=[_view(r) for r in page], next_cursor=encode_cursor(
        page[-1]["proposed_at"], page[-1]["id"]) if more and page else None)


@router.get("/v1/journals/{journal_id}", response_model=JournalOut,
            summary="A manual journal")
async def journal(journal_id: str, request: Request, principal: Reader) -> JournalOut:
    async with runtime(request).pool.acquire() as conn:
        row = await repo.journal(conn, _uuid(journal_id))
    if row is None:
        raise NotFound(f"no journal {journal_id}", field="id")
    return _view(row)


@router.get("/v1/periods", response_model=Periods, summary="Closed accounting periods")
async def periods(request: Request, principal: Reader) -> Periods:
    async with runtime(request).pool.acquire() as conn:
        return Periods.model_validate(money_strings({"closed": await repo.periods(conn)}))


@router.post("/v1/periods/{period}/close", status_code=201, response_model=PeriodClose,
             responses=both(PeriodClose),
             summary="Close a month: nothing dated in it can be posted any more")
async def close_period(period: str, request: Request, principal: Approver,
                       idempotency_key: IdempotencyKey = None) -> JSONResponse:
    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        row, created = await handlers.close_period(uow.conn, period, principal.sub,
                                                   _today(request))
        return (PeriodClose.model_validate(money_strings({**dict(row), "created": created})),
                201 if created else 200)

    return await once(request, f"period-close:{period}", idempotency_key, {}, work)


@router.post("/v1/years/{year}/close", status_code=201, response_model=YearClose,
             responses=both(YearClose),
             summary="Year-end close: income and expenses to retained earnings")
async def close_year(year: int, request: Request, principal: Approver,
                     idempotency_key: IdempotencyKey = None) -> JSONResponse:
    if not 1900 <= year <= 9999:
        raise InvalidInput("a year between 1900 and 9999", field="year")

    async def work(uow: UnitOfWork) -> tuple[BaseModel, int]:
        out = await handlers.close_year(uow.conn, year, principal.sub, _today(request))
        return YearClose.model_validate(money_strings(out)), 201 if out["created"] else 200

    return await once(request, f"year-close:{year}", idempotency_key, {}, work)
