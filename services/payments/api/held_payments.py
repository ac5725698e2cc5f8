"""Payments held for review (a mistyped short reference) and operators' decision on one,
maker-checker: ``POST /v1/payments/{id}/match`` or ``/refund`` proposes, the same path +
``/approve`` by another operator applies it (:mod:`services.payments.handlers.held_payments`).
Every write takes an ``Idempotency-Key``. ``GET /v1/held-payments`` is the queue (every
day, oldest first); the day's listing shows them too (``GET /v1/payments?status=held``).

Matching a payment to a loan resolves an unidentified collection (``reconciliation:resolve``);
refunding it pays money out (``refunds:retry``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.payments.api.deps import runtime, settings
from services.payments.api.paging import decode_cursor, encode_cursor
from services.payments.api.schemas import money_strings
from services.payments.api.servicing_schemas import (
    DecisionNote,
    HeldDecision,
    HeldPayment,
    HeldPayments,
    MatchRequest,
)
from services.payments.handlers import held_payments as handlers
from services.payments.repository import servicing as repo
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import NotFound

OPERATOR = ("payments:read", "tenant:all")
SCOPES = {"match": ("reconciliation:resolve", "tenant:all"),
          "refund": ("refunds:retry", "tenant:all")}

router = APIRouter(tags=["held payments"])


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no payment {value[:60]}", field="id") from None


@router.get("/v1/held-payments", response_model=HeldPayments,
            summary="Payments held for review in suspense (a mistyped reference), oldest "
                    "first, each with the decision waiting for a second operator")
async def held(request: Request, principal: Annotated[Principal, require(*OPERATOR)],
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> HeldPayments:
    after = decode_cursor(cursor)
    async with runtime(request).pool.acquire() as conn:
        rows = await repo.held_payments(conn, limit + 1, after=after)
    page = rows[:limit]
    return HeldPayments(
        items=[HeldPayment.model_validate(money_strings(handlers.view(r))) for r in page],
        next_cursor=encode_cursor(page[-1]["received_at"], page[-1]["id"])
        if len(rows) > limit and page else None)


async def _propose(request: Request, principal: Principal, payment_id: str, action: str,
                   body: Any, loan_id: str | None, key: str) -> JSONResponse:
    ident = _uuid(payment_id)
    scope = f"held-{action}:{ident}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        payment = await repo.payment(uow.conn, ident, lock=True)
        if payment is None:
            raise NotFound(f"no payment {payment_id}", field="id")
        await handlers.propose(uow, payment, action=action, loan_id=loan_id, note=body.note,
                               operator=principal.sub, key=key)
        response = HeldDecision(payment_id=str(ident), action=action, status="proposed",
                                loan_id=loan_id, proposed_by=principal.sub
                                ).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/payments/{ident}"})


async def _approve(request: Request, principal: Principal, payment_id: str, action: str,
                   body: DecisionNote, key: str) -> JSONResponse:
    ident = _uuid(payment_id)
    scope = f"held-{action}-approve:{ident}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        payment = await repo.payment(uow.conn, ident, lock=True)
        if payment is None:
            raise NotFound(f"no payment {payment_id}", field="id")
        done = await handlers.approve(uow, settings(request), payment, action=action,
                                      operator=principal.sub, note=body.note)
        after = await repo.payment(uow.conn, ident)
        assert after is not None
        response = HeldDecision(payment_id=str(ident), action=action, status=after["status"],
                                loan_id=done.loan_id,
                                proposed_by=done.approval["proposed_by"],
                                approved_by=principal.sub).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/payments/{ident}"})


@router.post("/v1/payments/{payment_id}/match", status_code=202, response_model=HeldDecision,
             summary="Propose matching a held payment to a loan (another operator approves)")
async def propose_match(
    payment_id: str, body: MatchRequest, request: Request,
    principal: Annotated[Principal, require(*SCOPES["match"])],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    return await _propose(request, principal, payment_id, "match", body, body.loan_id, key)


@router.post("/v1/payments/{payment_id}/match/approve", status_code=202,
             response_model=HeldDecision,
             summary="Approve another operator's match: loans is told of the payment again, "
                     "for that loan, under the same payment id")
async def approve_match(
    payment_id: str, request: Request,
    principal: Annotated[Principal, require(*SCOPES["match"])],
    body: DecisionNote | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    return await _approve(request, principal, payment_id, "match", body or DecisionNote(), key)


@router.post("/v1/payments/{payment_id}/refund", status_code=202, response_model=HeldDecision,
             summary="Propose refunding a held payment to the payer (another operator "
                     "approves)")
async def propose_refund(
    payment_id: str, request: Request,
    principal: Annotated[Principal, require(*SCOPES["refund"])],
    body: DecisionNote | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    return await _propose(request, principal, payment_id, "refund", body or DecisionNote(),
                          None, key)


@router.post("/v1/payments/{payment_id}/refund/approve", status_code=202,
             response_model=HeldDecision,
             summary="Approve another operator's refund of a held payment (the normal "
                     "refund path; only confirmed money)")
async def approve_refund(
    payment_id: str, request: Request,
    principal: Annotated[Principal, require(*SCOPES["refund"])],
    body: DecisionNote | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    return await _approve(request, principal, payment_id, "refund", body or DecisionNote(),
                          key)
