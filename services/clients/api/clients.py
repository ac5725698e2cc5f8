"""``/v1/clients``: onboarding, reading, search, KYC, block/unblock, contact, credit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.clients.api.credit_schemas import ArrearsOut, CycleOut, HoldOut
from services.clients.api.deps import runtime, settings
from services.clients.api.schemas import (
    ClientIn,
    ClientOut,
    ClientPage,
    ClientPatch,
    CreditOut,
    KycIn,
    ReasonIn,
)
from services.clients.domain.identity import normalise_cin, normalise_phone
from services.clients.handlers import clients as handlers
from services.clients.repository import behaviour as behaviour_repo
from services.clients.repository import clients as repo
from services.clients.repository import credit as credit_repo
from shared import idempotency
from shared.auth import Principal, require
from shared.errors import InvalidInput, NotFound

router = APIRouter(prefix="/v1/clients", tags=["clients"])

Reader = Annotated[Principal, require("clients:read")]
Writer = Annotated[Principal, require("clients:write")]
Checker = Annotated[Principal, require("clients:kyc")]


@router.post("", status_code=201, response_model=ClientOut)
async def register(
    body: ClientIn, request: Request, principal: Writer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    rt = runtime(request)
    scope = f"clients.register:{principal.partner_id or principal.sub}"
    async with rt.uow() as uow:
        key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
        if key is not None:
            replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
            if replay is not None:
                return JSONResponse(replay.body, status_code=replay.status)
        client = await handlers.register(
            uow, principal, handlers.NewClient(**body.model_dump()),
            settings(request).limit_policy())
        out = ClientOut.of(client).model_dump(mode="json")
        if key is not None:
            await idempotency.complete(uow, scope, key, 201, out)
        await uow.commit()
    return JSONResponse(out, status_code=201)


@router.get("", response_model=ClientPage)
async def search(
    request: Request, principal: Reader,
    phone: str | None = None,
    national_id: str | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name")] = None,
    kyc_status: str | None = None,
    partner_id: Annotated[str | None, Query(
        max_length=100, description="operators: only this partner's clients")] = None,
    office_id: Annotated[str | None, Query(
        max_length=40, description="only the clients of this very office")] = None,
    officer_id: Annotated[str | None, Query(
        max_length=40, description="only this loan officer's clients")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ClientPage:
    if kyc_status is not None and kyc_status not in ("pending", "verified", "rejected"):
        raise InvalidInput("kyc_status is pending, verified or rejected", field="kyc_status")
    if principal.sees_all_tenants:
        scope = partner_id
    else:  # a partner only ever searches its own clients
        scope = principal.partner_id or ""
        if partner_id is not None and partner_id != scope:
            raise NotFound("no such partner", field="partner_id")
    query = repo.SearchQuery(
        partner_id=scope, within_office=principal.office_path, office_id=office_id,
        officer_id=officer_id,
        phone=normalise_phone(phone) if phone is not None else None,
        national_id=normalise_cin(national_id) if national_id is not None else None,
        q=(q or "").strip() or None, kyc_status=kyc_status, limit=limit, cursor=cursor)
    async with runtime(request).uow() as uow:
        found, next_cursor = await repo.search(uow.conn, query)
    return ClientPage(items=[ClientOut.of(c) for c in found], next_cursor=next_cursor)


@router.get("/{client_id}", response_model=ClientOut)
async def get_client(client_id: str, request: Request, principal: Reader) -> ClientOut:
    async with runtime(request).uow() as uow:
        return ClientOut.of(await handlers.get(uow, principal, client_id))


@router.patch("/{client_id}", response_model=ClientOut)
async def change(client_id: str, body: ClientPatch, request: Request, principal: Writer
                 ) -> ClientOut:
    async with runtime(request).uow() as uow:
        client = await handlers.change_contact(
            uow, principal, client_id, phone=body.phone, language=body.language,
            sms_consent=body.sms_consent)
        await uow.commit()
    return ClientOut.of(client)


@router.post("/{client_id}/kyc", response_model=ClientOut)
async def decide_kyc(client_id: str, body: KycIn, request: Request, principal: Checker
                     ) -> ClientOut:
    async with runtime(request).uow() as uow:
        client = await handlers.decide_kyc(uow, principal, client_id, decision=body.decision,
                                           reason=body.reason)
        await uow.commit()
    return ClientOut.of(client)


@router.post("/{client_id}/block", response_model=ClientOut)
async def block(client_id: str, body: ReasonIn, request: Request, principal: Writer
                ) -> ClientOut:
    async with runtime(request).uow() as uow:
        client = await handlers.block(uow, principal, client_id, body.reason)
        await uow.commit()
    return ClientOut.of(client)


@router.post("/{client_id}/unblock", response_model=ClientOut)
async def unblock(client_id: str, body: ReasonIn, request: Request, principal: Writer
                  ) -> ClientOut:
    async with runtime(request).uow() as uow:
        client = await handlers.unblock(uow, principal, client_id, body.reason)
        await uow.commit()
    return ClientOut.of(client)


@router.get("/{client_id}/credit", response_model=CreditOut)
async def credit(client_id: str, request: Request, principal: Reader) -> CreditOut:
    async with runtime(request).uow() as uow:
        client = await handlers.get(uow, principal, client_id)
        account = await credit_repo.get_account(uow.conn, client.id)
        live = await credit_repo.live_reservations(uow.conn, client.id)
        holds = await behaviour_repo.holds(uow.conn, client.id)
        arrears = await behaviour_repo.loans_in_arrears(uow.conn, client.id)
        cycle = await behaviour_repo.last_cycle(uow.conn, client.id)
    if account is None:
        raise NotFound("this client has no credit account", field="id")
    return CreditOut.of(account, live).model_copy(update={
        "credit_hold": any(h.status == "active" for h in holds),
        "holds": [HoldOut.of(h) for h in holds],
        "loans_in_arrears": [ArrearsOut.of(b) for b in arrears],
        "last_cycle": CycleOut.of(cycle) if cycle else None})
