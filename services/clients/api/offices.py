"""``/v1/offices`` and ``/v1/staff``: the organisation's hierarchy and its people.

Every route sees only the token's office subtree; the rest answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.clients.api.deps import runtime
from services.clients.api.org_schemas import (
    OfficeIn,
    OfficeOut,
    OfficePage,
    OfficePatch,
    StaffIn,
    StaffOut,
    StaffPage,
    StaffPatch,
)
from services.clients.handlers import offices as handlers
from services.clients.repository import offices as repo
from shared.auth import Principal, require

router = APIRouter(tags=["organisation"])

Reader = Annotated[Principal, require("clients:read")]
Manager = Annotated[Principal, require("tenant:all", "clients:write")]
Kind = Annotated[str | None, Query(
    pattern="^(head_office|region|branch|mobile_unit)$",
    description="head_office, region, branch or mobile_unit")]


@router.post("/v1/offices", status_code=201, response_model=OfficeOut)
async def open_office(body: OfficeIn, request: Request, principal: Manager) -> OfficeOut:
    async with runtime(request).uow() as uow:
        office = await handlers.open_office(uow, principal, office_id=body.id, kind=body.kind,
                                            name=body.name, parent_id=body.parent_id)
        await uow.commit()
    return OfficeOut.of(office)


@router.get("/v1/offices", response_model=OfficePage)
async def list_offices(
    request: Request, principal: Reader,
    parent_id: Annotated[str | None, Query(max_length=40)] = None,
    kind: Kind = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500,
                                        description="the path of the last office")] = None,
) -> OfficePage:
    """The offices of the token's subtree, parents before children."""
    async with runtime(request).uow() as uow:
        found = await repo.list_offices(uow.conn, within=principal.office_path,
                                        parent_id=parent_id, kind=kind, limit=limit + 1,
                                        after=cursor)
    page = found[:limit]
    return OfficePage(items=[OfficeOut.of(o) for o in page],
                      next_cursor=page[-1].path if len(found) > limit else None)


@router.get("/v1/offices/{office_id}", response_model=OfficeOut)
async def get_office(office_id: str, request: Request, principal: Reader) -> OfficeOut:
    async with runtime(request).uow() as uow:
        return OfficeOut.of(await handlers.get_office(uow, principal, office_id))


@router.patch("/v1/offices/{office_id}", response_model=OfficeOut)
async def change_office(office_id: str, body: OfficePatch, request: Request,
                        principal: Manager) -> OfficeOut:
    async with runtime(request).uow() as uow:
        office = await handlers.change_office(uow, principal, office_id, name=body.name,
                                              status=body.status)
        await uow.commit()
    return OfficeOut.of(office)


@router.post("/v1/staff", status_code=201, response_model=StaffOut)
async def add_staff(body: StaffIn, request: Request, principal: Manager) -> StaffOut:
    async with runtime(request).uow() as uow:
        member = await handlers.add_staff(uow, principal, handlers.NewStaff(
            full_name=body.full_name, role=body.role, office_id=body.office_id, id=body.id))
        await uow.commit()
    return StaffOut.of(member)


@router.get("/v1/staff", response_model=StaffPage)
async def list_staff(
    request: Request, principal: Reader,
    office_id: Annotated[str | None, Query(max_length=40)] = None,
    role: Annotated[str | None, Query(pattern="^(loan_officer|branch_manager)$")] = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500,
                                        description="the id of the last staff member")] = None,
) -> StaffPage:
    """The staff of the token's subtree, by id."""
    async with runtime(request).uow() as uow:
        found = await repo.list_staff(uow.conn, within=principal.office_path,
                                      office_id=office_id, role=role, active=active,
                                      limit=limit + 1, after=cursor)
    page = found[:limit]
    return StaffPage(items=[StaffOut.of(s) for s in page],
                     next_cursor=page[-1].id if len(found) > limit else None)


@router.get("/v1/staff/{staff_id}", response_model=StaffOut)
async def get_staff(staff_id: str, request: Request, principal: Reader) -> StaffOut:
    async with runtime(request).uow() as uow:
        return StaffOut.of(await handlers.get_staff(uow, principal, staff_id))


@router.patch("/v1/staff/{staff_id}", response_model=StaffOut)
async def change_staff(staff_id: str, body: StaffPatch, request: Request,
                       principal: Manager) -> StaffOut:
    async with runtime(request).uow() as uow:
        member = await handlers.change_staff(uow, principal, staff_id,
                                             full_name=body.full_name,
                                             office_id=body.office_id, active=body.active)
        await uow.commit()
    return StaffOut.of(member)
