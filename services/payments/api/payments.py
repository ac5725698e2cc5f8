"""``POST /v1/repayments`` (wallets) and ``GET /v1/payments/{id}``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.payments.api.deps import runtime, settings
from services.payments.api.schemas import (
    PaymentOut,
    PayoutOut,
    RefundOut,
    RepaymentAccepted,
    RepaymentRequest,
)
from services.payments.handlers.collections import record_collection
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.repository import refunds as refunds_repo
from services.payments.repository.payouts import Payout
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import Conflict, NotFound
from shared.money import format_amount

router = APIRouter(tags=["payments"])


def _payment_view(row: Any, refunds: list[Payout]) -> PaymentOut:
    return PaymentOut(
        payment_id=str(row["id"]), kind="repayment", loan_id=row["loan_id"],
        amount=format_amount(row["amount"]), currency=row["currency"],
        status=row["status"], payer_msisdn=row["payer_msisdn"],
        provider=row["provider"], source=row["source"],
        external_ref=row["external_ref"].split(":", 1)[-1] if row["source"] == "api"
        else row["external_ref"],
        provider_reference=row["provider_reference"],
        rejection_reason=row["rejection_reason"],
        received_at=row["received_at"].isoformat(),
        updated_at=row["updated_at"].isoformat(),
        refunds=[RefundOut(
            payout_id=str(r.id), amount=format_amount(r.amount),
            status=r.status.value, msisdn=r.msisdn,
            provider_reference=r.provider_reference,
            failure_reason=r.failure_reason,
        ) for r in refunds],
    )


def _payout_view(payout: Payout) -> PayoutOut:
    view = payout.public()
    view["amount"] = format_amount(payout.amount)
    return PayoutOut.model_validate(view)


@router.post("/v1/repayments", status_code=202, response_model=RepaymentAccepted,
             summary="A wallet reports a repayment it collected (idempotent)")
async def create_repayment(
    body: RepaymentRequest, request: Request,
    principal: Annotated[Principal, require("repayments:write")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    s = settings(request)
    partner = principal.partner_id or principal.sub
    provider = partner if s.provider(partner) else s.default_provider
    scope = f"repayments:{partner}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        external_ref = f"{partner}:{body.external_ref}"
        if await payments_repo.payment_by_ref(uow.conn, provider, "api", external_ref):
            raise Conflict(f"a repayment with external_ref {body.external_ref!r} was "
                           "already received under another Idempotency-Key",
                           field="external_ref")
        payment_id, _ = await record_collection(
            uow, loan_id=body.loan_id, amount=body.amount, currency=body.currency,
            payer_msisdn=body.payer_msisdn, provider=provider, source="api",
            partner_id=partner, external_ref=external_ref, provider_reference=None,
            reported_ref=body.external_ref)
        response = RepaymentAccepted(payment_id=str(payment_id),
                                     status="received").model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202,
                        headers={"Location": f"/v1/payments/{payment_id}"})


@router.get("/v1/payments/{payment_id}", response_model=PaymentOut | PayoutOut,
            summary="A repayment, disbursement or refund")
async def get_payment(
    payment_id: str, request: Request,
    principal: Annotated[Principal, require("payments:read")],
) -> PaymentOut | PayoutOut:
    try:
        pid: uuid.UUID | None = uuid.UUID(payment_id)
    except ValueError:
        pid = None
    async with runtime(request).pool.acquire() as conn:
        row = await payments_repo.payment(conn, pid) if pid else None
        if row is not None and principal.can_see(row["partner_id"]):
            return _payment_view(row, await refunds_repo.refunds_of(conn, row["id"]))
        payout = await payouts_repo.payout(conn, pid) if pid else None
        if payout is None:
            payout = await payouts_repo.payout_by_saga(conn, payment_id)
    if payout is not None and principal.can_see(payout.partner_id or None):
        return _payout_view(payout)
    raise NotFound(f"no payment {payment_id}", field="payment_id")
