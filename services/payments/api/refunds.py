"""Refunds held for review, and an operator's retry of one (audited).

``POST /v1/refunds/{id}/retry`` puts a held refund back through the normal refund
path (:mod:`services.payments.handlers.refunds`); ``{id}`` is the payment id or the
failed refund payout's id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.payments.api.deps import runtime, settings
from services.payments.api.schemas import (
    HeldRefund,
    HeldRefunds,
    RetryAudit,
    RetryAudits,
    RetryQueued,
    RetryRequest,
)
from services.payments.handlers import refunds as handlers
from services.payments.repository import refunds as repo
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import NotFound
from shared.money import format_amount

OPERATOR = ("payments:read", "tenant:all")
# Paying money out again is its own permission, not a read.
RETRY = ("refunds:retry", "tenant:all")

router = APIRouter(tags=["refunds"])


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no refund {value[:60]}", field="id") from None


def _retry_view(row: Any) -> RetryAudit:
    return RetryAudit(
        attempt=row["attempt"], payout_id=str(row["payout_id"]),
        previous_payout_id=str(row["previous_payout_id"]) if row["previous_payout_id"]
        else None, amount=format_amount(row["amount"]), msisdn=row["msisdn"],
        requested_by=row["requested_by"], requested_at=row["requested_at"].isoformat(),
        note=row["note"],
    )


@router.get("/v1/refunds/held", response_model=HeldRefunds,
            summary="Refunds held in client payable for review")
async def held(request: Request, principal: Annotated[Principal, require(*OPERATOR)],
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> HeldRefunds:
    async with runtime(request).pool.acquire() as conn:
        rows = await repo.held_refunds(conn, limit)
    return HeldRefunds(items=[HeldRefund(
        payment_id=str(r["payment_id"]), loan_id=r["loan_id"],
        partner_id=r["partner_id"], provider=r["provider"],
        payment_status=r["payment_status"], rejection_reason=r["rejection_reason"],
        received_at=r["received_at"].isoformat(),
        amount=format_amount(r["payout_amount"] or r["amount_due"]),
        msisdn=r["msisdn"] or r["payer_msisdn"],
        last_payout_id=str(r["payout_id"]) if r["payout_id"] else None,
        failure_reason=r["failure_reason"] or (
            None if r["payout_id"] else "no payer wallet to refund"),
        failed_at=r["failed_at"].isoformat() if r["failed_at"] else None,
        retries=r["retries"],
    ) for r in rows])


@router.get("/v1/refunds/{refund_id}/retries", response_model=RetryAudits,
            summary="The audit of a refund's retries")
async def retries(refund_id: str, request: Request,
                  principal: Annotated[Principal, require(*OPERATOR)]) -> RetryAudits:
    ident = _uuid(refund_id)
    async with runtime(request).pool.acquire() as conn:
        payment = await handlers.payment_of(conn, ident)
        if payment is None:
            raise NotFound(f"no refund {refund_id}", field="id")
        rows = await repo.refund_retries_of(conn, payment["id"])
    return RetryAudits(payment_id=str(payment["id"]), items=[_retry_view(r) for r in rows])


@router.post("/v1/refunds/{refund_id}/retry", status_code=202, response_model=RetryQueued,
             summary="Pay a held refund again (operator, idempotent, audited)")
async def retry(
    refund_id: str, request: Request,
    principal: Annotated[Principal, require(*RETRY)],
    body: RetryRequest | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    body = body or RetryRequest()
    ident = _uuid(refund_id)
    scope = f"refund-retry:{ident}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        # locked: one retry at a time
        payment = await handlers.payment_of(uow.conn, ident, lock=True)
        if payment is None:
            raise NotFound(f"no refund {refund_id}", field="id")
        queued = await handlers.queue_retry(
            uow, settings(request), payment, note=body.note, msisdn=body.msisdn,
            operator=principal.sub, key=key)
        response = RetryQueued(
            payment_id=str(queued.payment_id), payout_id=str(queued.payout_id),
            status="pending", retry=_retry_view(queued.audit)).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/payments/{payment['id']}"})
