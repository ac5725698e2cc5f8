"""Refunds held for review, and operators' retry of one (maker-checker, audited).

``POST /v1/refunds/{id}/retry`` proposes a retry; ``POST /v1/refunds/{id}/retry/approve``
by a different operator applies it (:mod:`services.payments.handlers.refunds`): a held
refund goes back through the normal refund path with a new payout, an in-doubt one is
asked again with its original correlation id. ``{id}`` is the payment id or a refund
payout's id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.payments import state
from services.payments.api.deps import runtime, settings
from services.payments.api.paging import decode_cursor, encode_cursor
from services.payments.api.payout_schemas import ApprovalRequest, RetryProposed
from services.payments.api.payouts import proposal_view
from services.payments.api.schemas import (
    HeldRefund,
    HeldRefunds,
    RetryAudit,
    RetryAudits,
    RetryQueued,
    RetryRequest,
)
from services.payments.handlers import refunds as handlers
from services.payments.repository import keys
from services.payments.repository import refunds as repo
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import Conflict, NotFound
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
        note=row["note"], approved_by=row["approved_by"], mode=row["mode"],
    )


@router.get("/v1/refunds/held", response_model=HeldRefunds,
            summary="Refunds held in client payable for review, oldest first")
async def held(request: Request, principal: Annotated[Principal, require(*OPERATOR)],
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> HeldRefunds:
    after = decode_cursor(cursor)
    async with runtime(request).pool.acquire() as conn:
        rows = await repo.held_refunds(conn, limit + 1, after=after)
    page = rows[:limit]
    more = len(rows) > limit
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
        retry_proposed=r["proposal_id"] is not None,
        retry_proposed_by=r["proposed_by"],
        retry_proposed_at=r["proposed_at"].isoformat() if r["proposed_at"] else None,
    ) for r in page], next_cursor=encode_cursor(page[-1]["received_at"], page[-1]["payment_id"])
        if more and page else None)


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


@router.post("/v1/refunds/{refund_id}/retry", status_code=202, response_model=RetryProposed,
             summary="Propose paying a refund again (operator, idempotent, audited); "
                     "another operator approves")
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
        # locked: one proposal at a time
        payment = await handlers.payment_of(uow.conn, ident, lock=True)
        if payment is None:
            raise NotFound(f"no refund {refund_id}", field="id")
        row = await handlers.propose_retry(uow, payment, note=body.note, msisdn=body.msisdn,
                                           operator=principal.sub, key=key)
        response = RetryProposed(payment_id=str(payment["id"]), status="proposed",
                                 proposal=proposal_view(row)).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/payments/{payment['id']}"})


@router.post("/v1/refunds/{refund_id}/retry/approve", status_code=202,
             response_model=RetryQueued,
             summary="Approve another operator's refund retry (idempotent, audited)")
async def approve_retry(
    refund_id: str, request: Request,
    principal: Annotated[Principal, require(*RETRY)],
    body: ApprovalRequest | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    body = body or ApprovalRequest()
    ident = _uuid(refund_id)
    scope = f"refund-retry-approve:{ident}"
    rt = runtime(request)
    superseded = ""
    async with rt.uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        payment = await handlers.payment_of(uow.conn, ident, lock=True)
        if payment is None:
            raise NotFound(f"no refund {refund_id}", field="id")
        done = await handlers.approve_retry(uow, settings(request), payment,
                                            operator=principal.sub, note=body.note, key=key,
                                            clock=state.clock(rt.state))
        if done.queued is None:
            # the proposal is closed and audited; nothing was paid (the key stays free)
            await keys.release(uow.conn, scope, key)
            await uow.commit()
            superseded = done.reason
        else:
            resend = done.queued.audit["mode"] == "resend"
            response = RetryQueued(
                payment_id=str(done.queued.payment_id), payout_id=str(done.queued.payout_id),
                status="in_doubt" if resend else "pending",
                retry=_retry_view(done.queued.audit)).model_dump(mode="json")
            await idempotency.complete(uow, scope, key, 202, response)
            await uow.commit()
    if superseded:
        raise Conflict(f"the retry was not applied: {superseded}", field="id")
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/payments/{payment['id']}"})
