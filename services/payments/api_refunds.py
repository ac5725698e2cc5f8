"""Refunds held for review, and an operator's retry of one (audited).

A refund is *held* when its money sits in client payable: the latest refund
payout for the repayment failed (its entry reversed), or none could be made
because the payment had no payer wallet. ``POST /v1/refunds/{id}/retry`` puts it
back through the normal refund path: Dr client payable / Cr provider settlement
and a payout row in one transaction; the payout worker calls the provider
outside any transaction and settles it (``RefundIssued`` or ``RefundFailed``)
exactly as for a first refund.

The first payout of a refund is ``refund:<payment id>`` (ledger transfer and
saga step alike); retry *n* is ``refund:<payment id>:retry:<n>``, so each
attempt has its own provider correlation id and its own ledger entry, which the
payout worker reverses if that attempt fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from services.payments import ledger_repo, store
from services.payments.db import Conn
from services.payments.deps import Deps, utcnow
from services.payments.domain import postings
from services.payments.domain.payouts import PayoutStatus
from shared import idempotency
from shared.auth import Principal, require
from shared.contracts.common import Msisdn
from shared.errors import Conflict, InvalidInput, NotFound
from shared.money import format_amount
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.refunds")

OPERATOR = ("payments:read", "tenant:all")
# Paying money out again is its own permission, not a read.
RETRY = ("refunds:retry", "tenant:all")

Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class RetryRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Note = ""
    msisdn: Msisdn | None = None  # only for a payment that had no payer wallet


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no refund {value[:60]}", field="id") from None


async def _payment_of(conn: Conn, ident: uuid.UUID, *, lock: bool = False) -> Any:
    """The repayment a refund belongs to, given a refund payout id or the payment id."""
    payout = await store.payout(conn, ident)
    pid = payout.payment_id if payout is not None and payout.kind == "refund" else ident
    return await store.payment(conn, pid, lock=lock) if pid else None


def _retry_view(row: Any) -> dict[str, Any]:
    return {
        "attempt": row["attempt"], "payout_id": str(row["payout_id"]),
        "previous_payout_id": str(row["previous_payout_id"]) if row["previous_payout_id"]
        else None, "amount": format_amount(row["amount"]), "msisdn": row["msisdn"],
        "requested_by": row["requested_by"], "requested_at": row["requested_at"].isoformat(),
        "note": row["note"],
    }


def refunds_router(deps: Deps) -> APIRouter:
    router = APIRouter(tags=["refunds"])

    @router.get("/v1/refunds/held", summary="Refunds held in client payable for review")
    async def held(request: Request, principal: Annotated[Principal, require(*OPERATOR)],
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        async with request.app.state.runtime.pool.acquire() as conn:
            rows = await store.held_refunds(conn, limit)
        return {"items": [{
            "payment_id": str(r["payment_id"]), "loan_id": r["loan_id"],
            "partner_id": r["partner_id"], "provider": r["provider"],
            "payment_status": r["payment_status"], "rejection_reason": r["rejection_reason"],
            "received_at": r["received_at"].isoformat(),
            "amount": format_amount(r["payout_amount"] or r["amount_due"]),
            "msisdn": r["msisdn"] or r["payer_msisdn"],
            "last_payout_id": str(r["payout_id"]) if r["payout_id"] else None,
            "failure_reason": r["failure_reason"] or (
                None if r["payout_id"] else "no payer wallet to refund"),
            "failed_at": r["failed_at"].isoformat() if r["failed_at"] else None,
            "retries": r["retries"],
        } for r in rows]}

    @router.get("/v1/refunds/{refund_id}/retries", summary="The audit of a refund's retries")
    async def retries(refund_id: str, request: Request,
                      principal: Annotated[Principal, require(*OPERATOR)]) -> dict[str, Any]:
        ident = _uuid(refund_id)
        async with request.app.state.runtime.pool.acquire() as conn:
            payment = await _payment_of(conn, ident)
            if payment is None:
                raise NotFound(f"no refund {refund_id}", field="id")
            rows = await store.refund_retries_of(conn, payment["id"])
        return {"payment_id": str(payment["id"]), "items": [_retry_view(r) for r in rows]}

    @router.post("/v1/refunds/{refund_id}/retry", status_code=202,
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
        async with request.app.state.runtime.uow() as uow:
            replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
            if replay is not None:
                return JSONResponse(replay.body, status_code=replay.status)
            payment = await _payment_of(uow.conn, ident, lock=True)  # locked: one retry at a time
            if payment is None:
                raise NotFound(f"no refund {refund_id}", field="id")
            response = await _queue_retry(deps, uow, payment, body, principal.sub, key)
            await idempotency.complete(uow, scope, key, 202, response)
            await uow.commit()
        return JSONResponse(response, status_code=202,
                            headers={"Location": f"/v1/payments/{payment['id']}"})

    return router


async def _queue_retry(deps: Deps, uow: UnitOfWork, payment: Any, body: RetryRequest,
                       operator: str, key: str) -> dict[str, Any]:
    conn = uow.conn
    pid: uuid.UUID = payment["id"]
    due = await store.entry_amount(conn, f"refund_due:{pid}")
    last = await store.latest_refund_payout(conn, pid)
    if due is None:
        raise Conflict(f"payment {pid} owes no refund (it is {payment['status']})",
                       field="id", state=payment["status"])
    if last is not None and last.status is not PayoutStatus.FAILED:
        raise Conflict(f"the refund of payment {pid} is {last.status.value}, not held for "
                       "review; only a failed refund can be retried", field="id",
                       state=last.status.value)
    if last is None and payment["status"] != "refund_failed":
        raise Conflict(f"the refund of payment {pid} is not held for review", field="id",
                       state=payment["status"])
    known = last.msisdn if last is not None else payment["payer_msisdn"]
    if known is not None and body.msisdn is not None and body.msisdn != known:
        raise InvalidInput("a refund goes back to the wallet that paid; leave msisdn out",
                           field="msisdn")
    msisdn = known or body.msisdn
    if msisdn is None:
        raise InvalidInput("the payment has no payer wallet: give the msisdn to refund",
                           field="msisdn")
    amount = last.amount if last is not None else due
    attempt = len(await store.refund_retries_of(conn, pid)) + 1
    # no payout at all yet (no payer wallet): this is the refund's first payout
    saga_id = f"refund:{pid}" if last is None else f"refund:{pid}:retry:{attempt}"
    entry = dataclasses.replace(
        postings.refund_payout(str(pid), payment["loan_id"], payment["provider"], amount),
        transfer_id=saga_id)
    await ledger_repo.post(conn, entry)
    inserted = await store.insert_payout(
        conn, kind="refund", saga_id=saga_id, request_hash=entry.request_hash(),
        loan_id=payment["loan_id"], client_id=last.client_id if last else "",
        partner_id=payment["partner_id"] or "", payment_id=pid, msisdn=msisdn, amount=amount,
        currency=payment["currency"], provider=payment["provider"],
        deadline=utcnow() + dt.timedelta(seconds=deps.settings.refund_deadline_s),
        journal_transfer_id=entry.transfer_id)
    if not inserted:
        raise Conflict(f"a refund payout {saga_id} already exists", field="id")
    payout = await store.payout_by_saga(conn, saga_id)
    assert payout is not None
    if payment["status"] == "refund_failed":
        await store.set_payment_status(conn, pid, "refund_pending", only_from="refund_failed")
    audit = await store.insert_refund_retry(
        conn, payment_id=pid, payout_id=payout.id,
        previous_payout_id=last.id if last else None, attempt=attempt, amount=amount,
        msisdn=msisdn, requested_by=operator, note=body.note, idempotency_key=key)
    log.info("refund of payment %s retried by %s (attempt %s, payout %s)", pid, operator,
             attempt, saga_id)
    return {"payment_id": str(pid), "payout_id": str(payout.id), "status": "pending",
            "retry": _retry_view(audit)}
