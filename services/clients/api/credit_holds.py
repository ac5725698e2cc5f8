"""``/v1/clients/{id}/credit-hold``: lifting the hold a written-off loan set, by
maker-checker (one operator proposes, another approves)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.clients.api.credit_schemas import HoldLiftOut, LiftIn
from services.clients.api.deps import runtime
from services.clients.handlers import credit_holds as handlers
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/clients", tags=["credit"])

Operator = Annotated[Principal, require("tenant:all", "clients:write")]


@router.post("/{client_id}/credit-hold/lift", status_code=201, response_model=HoldLiftOut)
async def propose_lift(client_id: str, body: LiftIn, request: Request, principal: Operator
                       ) -> HoldLiftOut:
    async with runtime(request).uow() as uow:
        lift = await handlers.propose_lift(uow, principal, client_id, body.reason)
        await uow.commit()
    return HoldLiftOut.of(lift)


@router.post("/{client_id}/credit-hold/lift/approve", response_model=HoldLiftOut)
async def approve_lift(client_id: str, request: Request, principal: Operator) -> HoldLiftOut:
    async with runtime(request).uow() as uow:
        lift = await handlers.approve_lift(uow, principal, client_id)
        await uow.commit()
    return HoldLiftOut.of(lift)
