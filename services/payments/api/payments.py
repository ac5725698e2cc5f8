"""``POST /v1/repayments`` (wallets) and ``GET /v1/payments/{id}``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.payments.api.deps import providers, runtime, settings
from services.payments.api.office_scope import sees_loan
from services.payments.api.schemas import (
    PaymentOut,
    PayoutOut,
    RefundOut,
    RepaymentAccepted,
    RepaymentRequest,
)
from services.payments.handlers.collections import (
    check_with_provider,
    provider_reference,
    record_collection,
    refuse,
    same_reference,
)
from services.payments.metrics import WALLET_REPORTS
from services.payments.repository import payments as payments_repo
from services.payments.repository import payouts as payouts_repo
from services.payments.repository import refunds as refunds_repo
from services.payments.repository.payouts import Payout
from shared import idempotency
from shared.auth import Principal, require
from shared.clock import system_clock
from shared.errors import Conflict, InvalidInput, NotFound
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
             summary="A wallet reports a repayment it collected (idempotent; confirmed "
                     "with the provider before anything is credited)")
async def create_repayment(
    body: RepaymentRequest, request: Request,
    principal: Annotated[Principal, require("repayments:write")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    s = settings(request)
    partner = principal.partner_id or principal.sub
    if body.provider is not None:
        if s.provider(body.provider) is None:
            raise InvalidInput(f"no mobile-money provider named {body.provider!r} is "
                               f"configured (one of {sorted(s.providers)})", field="provider")
        provider = body.provider
    else:
        provider = partner if s.provider(partner) else s.default_provider
    reference = provider_reference(body.provider_reference)
    client = providers(request).get(provider)
    assert client is not None
    # The status query by the provider's reference, outside any transaction.
    verdict = await check_with_provider(
        client, reference, loan_id=body.loan_id, amount=body.amount, currency=body.currency,
        payer_msisdn=body.payer_msisdn)
    scope = f"repayments:{partner}"
    rt = runtime(request)
    async with rt.uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        first = await payments_repo.payment_by_provider_reference(uow.conn, provider,
                                                                  reference)
        if first is not None:  # reported before, by a callback or a wallet: that payment
            if first["amount"] != body.amount or not same_reference(first["loan_id"],
                                                                    body.loan_id):
                raise Conflict(
                    f"{provider} transaction {reference} was already recorded as payment "
                    f"{first['id']} for {format_amount(first['amount'])} on loan "
                    f"{first['loan_id']}", field="provider_reference")
            await payments_repo.adopt(uow.conn, first["id"], partner)
            payment = first
        else:
            if verdict.outcome == "refuted":
                raise refuse(verdict)  # nothing written
            external_ref = f"{partner}:{body.external_ref}"
            if await payments_repo.payment_by_ref(uow.conn, provider, "api", external_ref):
                raise Conflict(f"a repayment with external_ref {body.external_ref!r} was "
                               "already received under another Idempotency-Key",
                               field="external_ref")
            payment, _ = await record_collection(
                uow, loan_id=body.loan_id, amount=body.amount, currency=body.currency,
                payer_msisdn=body.payer_msisdn, provider=provider, source="api",
                partner_id=partner, external_ref=external_ref, provider_reference=reference,
                reported_ref=body.external_ref, confirmed=verdict.outcome == "confirmed",
                confirm_deadline=system_clock() + dt.timedelta(
                    seconds=s.wallet_confirm_window_s))
            if payment["partner_id"] is None:
                await payments_repo.adopt(uow.conn, payment["id"], partner)
        payment_id = payment["id"]
        response = RepaymentAccepted(payment_id=str(payment_id),
                                     status=payment["status"]).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    WALLET_REPORTS.labels(provider, "first_report" if first is None else "already_known").inc()
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
        if (row is not None and principal.can_see(row["partner_id"])
                and await sees_loan(conn, principal, row["loan_id"])):
            return _payment_view(row, await refunds_repo.refunds_of(conn, row["id"]))
        payout = await payouts_repo.payout(conn, pid) if pid else None
        if payout is None:
            payout = await payouts_repo.payout_by_saga(conn, payment_id)
        if (payout is not None and principal.can_see(payout.partner_id or None)
                and await sees_loan(conn, principal, payout.loan_id,
                                   client_id=payout.client_id)):
            return _payout_view(payout)
    raise NotFound(f"no payment {payment_id}", field="payment_id")
