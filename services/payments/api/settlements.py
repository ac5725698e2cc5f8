"""An operator's settlement of an in-doubt payout, maker-checker, audited.

``POST /v1/payouts/{id}/settlement`` proposes (outcome, evidence, provider
reference); ``POST /v1/payouts/{id}/settlement/approve`` by a *different* operator
applies it through the same resolve path as the provider's own word
(:mod:`services.payments.handlers.settlements`). ``GET /v1/payouts/{id}/audit``
reads the audit.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.payments import state
from services.payments.api.deps import runtime, settings
from services.payments.api.payout_schemas import (
    ApprovalRequest,
    SettlementOut,
    SettlementRequest,
)
from services.payments.api.payouts import proposal_view
from services.payments.api.schemas import PayoutOut
from services.payments.handlers import settlements as handlers
from services.payments.repository import approvals, keys
from services.payments.repository import payouts as repo
from services.payments.repository.payouts import Payout
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import Conflict, InvalidInput, NotFound
from shared.money import format_amount

# Settling money on an operator's word is its own permission, not a read nor a refund retry.
SETTLE = ("payouts:settle", "tenant:all")
OPERATOR = ("payments:read", "tenant:all")

router = APIRouter(tags=["payouts"])


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no payout {value[:60]}", field="id") from None


def _payout_view(payout: Payout) -> PayoutOut:
    view = payout.public()
    view["amount"] = format_amount(payout.amount)
    return PayoutOut.model_validate(view)


@router.post("/v1/payouts/{payout_id}/settlement", status_code=202,
             response_model=SettlementOut,
             summary="Propose the settlement of an in-doubt payout, with evidence")
async def propose(
    payout_id: str, body: SettlementRequest, request: Request,
    principal: Annotated[Principal, require(*SETTLE)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    if body.outcome == "completed" and not body.provider_reference:
        raise InvalidInput("a payout settled as completed needs the provider's transaction "
                           "reference", field="provider_reference")
    ident = _uuid(payout_id)
    scope = f"payout-settlement:{ident}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        row, _ = await handlers.propose(
            uow, ident, outcome=body.outcome, evidence=body.evidence,
            provider_reference=body.provider_reference, operator=principal.sub, key=key)
        response = SettlementOut(payout_id=str(ident), status="proposed",
                                 proposal=proposal_view(row)).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 202, response)
        await uow.commit()
    return JSONResponse(response, status_code=202)


@router.get("/v1/payouts/{payout_id}/settlement", response_model=SettlementOut,
            summary="The settlement proposed for an in-doubt payout, waiting for approval")
async def open_settlement(payout_id: str, request: Request,
                          principal: Annotated[Principal, require(*OPERATOR)]
                          ) -> SettlementOut:
    ident = _uuid(payout_id)
    async with runtime(request).pool.acquire() as conn:
        payout = await repo.payout(conn, ident)
        if payout is None:
            raise NotFound(f"no payout {payout_id}", field="id")
        row = await approvals.open_proposal(conn, approvals.SETTLEMENT, ident)
    if row is None:
        raise NotFound(f"no settlement of payout {payout_id} waits for approval",
                       field="id")
    return SettlementOut(payout_id=str(ident), status="proposed",
                         proposal=proposal_view(row), payout=_payout_view(payout))


@router.post("/v1/payouts/{payout_id}/settlement/approve", response_model=SettlementOut,
             summary="Approve another operator's settlement of an in-doubt payout")
async def approve(
    payout_id: str, request: Request,
    principal: Annotated[Principal, require(*SETTLE)],
    body: ApprovalRequest | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    body = body or ApprovalRequest()
    ident = _uuid(payout_id)
    scope = f"payout-settlement-approve:{ident}"
    rt = runtime(request)
    async with rt.uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        if await repo.payout(uow.conn, ident) is None:
            raise NotFound(f"no payout {payout_id}", field="id")
        done = await handlers.approve(uow, settings(request), ident, operator=principal.sub,
                                      note=body.note, clock=state.clock(rt.state))
        if done.superseded:
            # the proposal is closed and audited; nothing was applied (the key stays free)
            await keys.release(uow.conn, scope, key)
            await uow.commit()
            status = done.payout.status.value if done.payout else "unknown"
        else:
            status = ""
            response = SettlementOut(
                payout_id=str(ident), status="approved",
                proposal=proposal_view(done.approval),
                payout=_payout_view(done.payout) if done.payout else None,
            ).model_dump(mode="json")
            await idempotency.complete(uow, scope, key, 200, response)
            await uow.commit()
    if status:
        raise Conflict(f"payout {payout_id} is {status}, no longer in doubt: the settlement "
                       "was not applied", field="id", state=status)
    return JSONResponse(response, status_code=200)


@router.get("/v1/payouts/{payout_id}/audit",
            summary="Operators' proposals, approvals and settlements of a payout")
async def audit(payout_id: str, request: Request,
                principal: Annotated[Principal, require(*OPERATOR)]) -> dict[str, object]:
    ident = _uuid(payout_id)
    async with runtime(request).pool.acquire() as conn:
        if await repo.payout(conn, ident) is None:
            raise NotFound(f"no payout {payout_id}", field="id")
        rows = await approvals.audit_of(conn, payout_id=ident)
    return {"payout_id": str(ident), "items": [
        {"action": r["action"], "actor": r["actor"], "at": r["at"].isoformat(),
         "approval_id": r["approval_id"], "detail": approvals.as_dict(r["detail"])}
        for r in rows]}
