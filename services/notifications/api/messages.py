"""``/v1/messages``: list, read (with the attempts), resend, an operator's send."""

from __future__ import annotations

import uuid
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query, Request

from services.notifications.api.deps import (
    office_filter,
    partner_scope,
    policies,
    pool,
    runtime,
)
from services.notifications.api.schemas import MessageOut, OfficeQuery, SendIn
from services.notifications.handlers import operator
from services.notifications.repository import messages as repo
from shared.auth import Principal, require
from shared.errors import NotFound

router = APIRouter(prefix="/v1", tags=["notifications"])

Reader = Annotated[Principal, require("messages:read")]
Sender = Annotated[Principal, require("messages:resend")]


async def _visible(request: Request, principal: Principal, message_id: str) -> asyncpg.Record:
    try:
        mid = uuid.UUID(message_id)
    except ValueError:
        raise NotFound(f"no message {message_id}", field="id") from None
    async with pool(request).acquire() as conn:
        row = await repo.get_message(conn, mid)
    if row is None or not principal.can_see(row["partner_id"]) or (
            not principal.can_see_office(row["office_path"])):
        raise NotFound(f"no message {message_id}", field="id")
    return row


async def _read(request: Request, message_id: uuid.UUID) -> MessageOut:
    async with pool(request).acquire() as conn:
        row = await repo.get_message(conn, message_id)
    assert row is not None
    return MessageOut.of(row)


@router.get("/messages", response_model=list[MessageOut])
async def list_messages(
    request: Request, principal: Reader,
    client_id: str | None = None, loan_id: str | None = None, phone: str | None = None,
    office_id: OfficeQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[MessageOut]:
    async with pool(request).acquire() as conn:
        rows = await repo.list_messages(conn, client_id=client_id, loan_id=loan_id,
                                        phone=phone, partner_id=partner_scope(principal),
                                        limit=limit,
                                        offices=office_filter(principal, office_id))
    return [MessageOut.of(r) for r in rows]


@router.get("/messages/{message_id}", response_model=MessageOut)
async def get_message(request: Request, message_id: str, principal: Reader) -> MessageOut:
    row = await _visible(request, principal, message_id)
    async with pool(request).acquire() as conn:
        attempts = await repo.attempts_of(conn, row["id"])
    return MessageOut.of(row, attempts)


@router.post("/messages/{message_id}/resend", response_model=MessageOut, status_code=201)
async def resend(request: Request, message_id: str, principal: Sender) -> MessageOut:
    row = await _visible(request, principal, message_id)
    async with runtime(request).uow() as uow:
        new_id = await operator.resend(uow, policies(request), row, principal.sub)
        await uow.commit()
    return await _read(request, new_id)


@router.post("/messages", response_model=MessageOut, status_code=201)
async def send(request: Request, body: SendIn, principal: Sender) -> MessageOut:
    """An operator sends a template to a client (or a phone) now."""
    async with runtime(request).uow() as uow:
        new_id = await operator.send_now(uow, policies(request), operator.SendNow(
            template=body.template, client_id=body.client_id, phone=body.phone,
            language=body.language, variables=body.variables), principal.sub,
            within_office=principal.office_path)
        await uow.commit()
    return await _read(request, new_id)
