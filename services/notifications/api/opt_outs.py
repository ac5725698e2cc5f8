"""``/v1/opt-outs``: a partner or an operator withdraws a phone's SMS consent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.notifications.api.deps import runtime
from services.notifications.api.schemas import OptOutIn, OptOutOut
from services.notifications.handlers.opt_outs import record_opt_out
from services.notifications.repository import contacts as repo
from shared.auth import Principal, require
from shared.errors import NotFound

router = APIRouter(prefix="/v1", tags=["notifications"])


@router.post("/opt-outs", response_model=OptOutOut, status_code=201)
async def opt_out(request: Request, body: OptOutIn,
                  principal: Annotated[Principal, require("clients:write")]) -> OptOutOut:
    async with runtime(request).uow() as uow:
        owners = await repo.recipients_by_phone(uow.conn, body.phone)
        if not any(principal.can_see(r.partner_id) and principal.can_see_office(r.office_path)
                   for r in owners) and not (principal.sees_all_tenants
                                             and principal.office_path is None):
            raise NotFound(f"no client of yours has the phone {body.phone}", field="phone")
        ids = await record_opt_out(uow, body.phone, "api", principal.sub)
        await uow.commit()
    return OptOutOut(phone=body.phone, client_ids=ids)
