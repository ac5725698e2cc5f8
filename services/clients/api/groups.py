"""``/v1/groups``: solidarity groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.clients.api.deps import runtime
from services.clients.api.schemas import GroupIn, GroupOut, ReasonIn
from services.clients.handlers import groups as handlers
from shared.auth import Principal, require

router = APIRouter(prefix="/v1/groups", tags=["groups"])

Reader = Annotated[Principal, require("clients:read")]
Writer = Annotated[Principal, require("clients:write")]


@router.post("", status_code=201, response_model=GroupOut)
async def form(body: GroupIn, request: Request, principal: Writer) -> GroupOut:
    async with runtime(request).uow() as uow:
        group = await handlers.form(uow, principal, name=body.name, leader_id=body.leader_id,
                                    member_ids=body.member_ids, office_id=body.office_id,
                                    officer_id=body.officer_id)
        await uow.commit()
    return GroupOut.of(group)


@router.get("/{group_id}", response_model=GroupOut)
async def get_group(group_id: str, request: Request, principal: Reader) -> GroupOut:
    async with runtime(request).uow() as uow:
        return GroupOut.of(await handlers.get(uow, principal, group_id))


@router.post("/{group_id}/dissolve", response_model=GroupOut)
async def dissolve(group_id: str, body: ReasonIn, request: Request, principal: Writer
                   ) -> GroupOut:
    async with runtime(request).uow() as uow:
        group = await handlers.dissolve(uow, principal, group_id, body.reason)
        await uow.commit()
    return GroupOut.of(group)


@router.post("/{group_id}/members/{client_id}/remove", response_model=GroupOut)
async def remove_member(group_id: str, client_id: str, body: ReasonIn, request: Request,
                        principal: Writer) -> GroupOut:
    """A member leaves an active group; 409 while the group has a live group loan
    (``reason: live_group_loan``), for the leader, or below three members."""
    async with runtime(request).uow() as uow:
        group = await handlers.remove_member(uow, principal, group_id, client_id, body.reason)
        await uow.commit()
    return GroupOut.of(group)
