"""Payouts to recover after a failed group disbursement
(:mod:`services.payments.handlers.recoveries`): the queue, oldest first, and operators'
outcome of one, maker-checker — ``POST /v1/recoveries/{id}/outcome`` proposes,
``/outcome/approve`` by another operator books it. Every write takes an
``Idempotency-Key``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.payments.api.deps import runtime
from services.payments.api.paging import decode_cursor, encode_cursor
from services.payments.api.recovery_schemas import (
    OutcomeRequest,
    Recovery,
    RecoveryDecision,
    RecoveryNote,
    RecoveryPage,
)
from services.payments.api.schemas import money_strings
from services.payments.handlers import recoveries as handlers
from services.payments.repository import approvals
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import NotFound

READ = ("payments:read", "tenant:all")
DECIDE = ("payouts:settle", "tenant:all")

router = APIRouter(tags=["recoveries"])


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no recovery {value[:60]}", field="id") from None


def _out(row: Any, payments: list[Any] | None = None) -> Recovery:
    return Recovery.model_validate(money_strings(handlers.view(row, payments)))


@router.get("/v1/recoveries", response_model=RecoveryPage,
            summary="Payouts to recover (members paid while their group's disbursement "
                    "failed), oldest first, each with the outcome waiting for approval")
async def listing(request: Request, principal: Annotated[Principal, require(*READ)],
                  status: Annotated[str, Query(pattern="^(open|recovered|written_off)$")
                                    ] = "open",
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  cursor: Annotated[str | None, Query(max_length=200)] = None
                  ) -> RecoveryPage:
    after = decode_cursor(cursor)
    async with runtime(request).pool.acquire() as conn:
        rows = await handlers.page(conn, status, limit + 1, after)
        page = rows[:limit]
        items = [_out(r, await handlers.returned_payments(conn, r["id"])) for r in page]
    return RecoveryPage(
        items=items,
        next_cursor=encode_cursor(page[-1]["created_at"], page[-1]["id"])
        if len(rows) > limit and page else None)


@router.get("/v1/recoveries/{recovery_id}", response_model=Recovery,
            summary="One payout to recover, with the collections that returned it")
async def one(recovery_id: str, request: Request,
              principal: Annotated[Principal, require(*READ)]) -> Recovery:
    rid = _uuid(recovery_id)
    async with runtime(request).pool.acquire() as conn:
        row = await handlers.with_proposal(conn, rid)
        if row is None:
            raise NotFound(f"no recovery {recovery_id}", field="id")
        return _out(row, await handlers.returned_payments(conn, rid))


@router.post("/v1/recoveries/{recovery_id}/outcome", status_code=202,
             response_model=RecoveryDecision,
             summary="Propose the outcome of a payout to recover: returned by a held "
                     "collection, or written off (another operator approves)")
async def propose(recovery_id: str, body: OutcomeRequest, request: Request,
                  principal: Annotated[Principal, require(*DECIDE)],
                  idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")
                                             ] = None) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    rid = _uuid(recovery_id)
    scope = f"recovery-outcome:{rid}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        rec = await handlers.get(uow.conn, rid, lock=True)
        if rec is None:
            raise NotFound(f"no recovery {recovery_id}", field="id")
        row = await handlers.propose(uow, rec, outcome=body.outcome,
                                     payment_id=body.payment_id, note=body.note,
                                     operator=principal.sub, key=key)
        proposed = approvals.body_of(row)
        response = RecoveryDecision(
            recovery_id=str(rid), outcome=body.outcome, status="proposed",
            payment_id=proposed.get("payment_id"), amount=proposed["amount"],
            proposed_by=principal.sub).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/recoveries/{rid}"})


@router.post("/v1/recoveries/{recovery_id}/outcome/approve", status_code=202,
             response_model=RecoveryDecision,
             summary="Approve another operator's outcome: the returned collection or the "
                     "write-off is booked against the member loan's portfolio")
async def approve(recovery_id: str, request: Request,
                  principal: Annotated[Principal, require(*DECIDE)],
                  body: RecoveryNote | None = None,
                  idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")
                                             ] = None) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    rid = _uuid(recovery_id)
    note = (body or RecoveryNote()).note
    scope = f"recovery-approve:{rid}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, {"note": note})
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        rec = await handlers.get(uow.conn, rid, lock=True)
        if rec is None:
            raise NotFound(f"no recovery {recovery_id}", field="id")
        closed = await handlers.approve(uow, rec, operator=principal.sub, note=note)
        after = await handlers.get(uow.conn, rid)
        assert after is not None
        decided = approvals.body_of(closed)
        response = RecoveryDecision(
            recovery_id=str(rid), outcome=str(decided.get("outcome")), status=after["status"],
            payment_id=decided.get("payment_id"), amount=str(decided.get("amount")),
            proposed_by=closed["proposed_by"], approved_by=principal.sub
        ).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/recoveries/{rid}"})
