"""Offices and staff: open, rename, close an office; attach, move, deactivate staff.

A token scoped to an office sees and changes only that office's subtree: anything
outside it is "no such office" (404), exactly like another partner's data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import asyncpg

from services.clients.domain import office as model
from services.clients.domain.office import Office, StaffMember
from services.clients.repository import offices as repo
from shared.auth import Principal
from shared.contracts.clients import OfficeChanged, OfficeOpened, StaffAssigned
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


def visible_office(office: Office | None, principal: Principal, *, field: str = "id"
                   ) -> Office:
    if office is None or not principal.can_see_office(office.path):
        raise NotFound("no such office", field=field)
    return office


async def get_office(uow: UnitOfWork, principal: Principal, office_id: str, *,
                     for_update: bool = False) -> Office:
    return visible_office(await repo.get_office(uow.conn, office_id, for_update=for_update),
                          principal)


async def referenced_office(uow: UnitOfWork, principal: Principal, office_id: str, *,
                            field: str) -> Office:
    """An office named in a request body: unknown or out of sight is bad input (422)."""
    office = await repo.get_office(uow.conn, office_id)
    if office is None or not principal.can_see_office(office.path):
        raise InvalidInput("no such office", field=field)
    return office


async def referenced_officer(uow: UnitOfWork, principal: Principal, officer_id: str, *,
                             field: str = "officer_id") -> StaffMember | None:
    staff = await repo.get_staff(uow.conn, officer_id)
    if staff is None or not principal.can_see_office(staff.office_path):
        return None
    return staff


def _opened(o: Office) -> OfficeOpened:
    return OfficeOpened(office_id=o.id, office_kind=o.kind, name=o.name, parent_id=o.parent_id,
                        path=o.path, opened_by=o.opened_by)


async def open_office(uow: UnitOfWork, principal: Principal, *, office_id: str | None,
                      kind: str, name: str, parent_id: str) -> Office:
    parent = await repo.get_office(uow.conn, parent_id)
    if parent is not None and not principal.can_see_office(parent.path):
        parent = None
    wanted_id = office_id if office_id is not None else f"{kind[:1]}-{uuid.uuid4().hex[:10]}"
    office = model.new_office(office_id=wanted_id, kind=kind, name=name, parent=parent,
                              opened_by=principal.sub)
    try:
        async with uow.conn.transaction():
            saved = await repo.insert_office(uow.conn, office)
    except asyncpg.UniqueViolationError:
        raise Conflict("an office with this id already exists", field="id") from None
    uow.emit(_opened(saved), key=saved.id)
    return saved


async def change_office(uow: UnitOfWork, principal: Principal, office_id: str, *,
                        name: str | None, status: str | None) -> Office:
    if name is None and status is None:
        raise InvalidInput("nothing to change: send name or status", field="body")
    office = await get_office(uow, principal, office_id, for_update=True)
    changed = office
    if name is not None:
        changed = replace(changed, name=model.clean_name(name))
    if status is not None:
        if status not in ("open", "closed"):
            raise InvalidInput("status is open or closed", field="status")
        if status == "closed":
            children, members, held = await repo.occupancy(uow.conn, office)
            changed = model.close_office(changed, open_children=children, members=members,
                                         clients=held)
        elif office.status == "closed":
            raise Conflict("a closed office stays closed; open a new one", field="status")
    if changed == office:
        return office
    saved = await repo.update_office(uow.conn, changed)
    uow.emit(OfficeChanged(office_id=saved.id, office_kind=saved.kind, name=saved.name,
                           path=saved.path, status=saved.status, changed_by=principal.sub),
             key=saved.id)
    return saved


# --- staff --------------------------------------------------------------------

def visible_staff(staff: StaffMember | None, principal: Principal) -> StaffMember:
    if staff is None or not principal.can_see_office(staff.office_path):
        raise NotFound("no such staff member", field="id")
    return staff


async def get_staff(uow: UnitOfWork, principal: Principal, staff_id: str, *,
                    for_update: bool = False) -> StaffMember:
    return visible_staff(await repo.get_staff(uow.conn, staff_id, for_update=for_update),
                         principal)


@dataclass(frozen=True)
class NewStaff:
    full_name: str
    role: str
    office_id: str
    id: str | None = None


def _assigned(s: StaffMember, by: str, previous: str | None = None) -> StaffAssigned:
    return StaffAssigned(staff_id=s.id, full_name=s.full_name, role=s.role,
                         office_id=s.office_id, office_path=s.office_path, active=s.active,
                         previous_office_id=previous, assigned_by=by)


async def add_staff(uow: UnitOfWork, principal: Principal, new: NewStaff) -> StaffMember:
    role = model.check_role(new.role)
    staff_id = model.check_slug(new.id if new.id is not None else f"s-{uuid.uuid4().hex[:12]}",
                                field="id")
    name = model.clean_name(new.full_name, field="full_name", max_len=200)
    office = model.check_attachment(role, await _attachable(uow, principal, new.office_id))
    member = StaffMember(id=staff_id, full_name=name, role=role, office_id=office.id,
                         office_path=office.path, created_by=principal.sub)
    try:
        async with uow.conn.transaction():
            saved = await repo.insert_staff(uow.conn, member)
    except asyncpg.UniqueViolationError:
        raise Conflict("a staff member with this id already exists", field="id") from None
    uow.emit(_assigned(saved, principal.sub), key=saved.id)
    return saved


async def _attachable(uow: UnitOfWork, principal: Principal, office_id: str) -> Office | None:
    office = await repo.get_office(uow.conn, office_id)
    if office is None or not principal.can_see_office(office.path):
        return None
    return office


async def change_staff(uow: UnitOfWork, principal: Principal, staff_id: str, *,
                       full_name: str | None, office_id: str | None, active: bool | None
                       ) -> StaffMember:
    """Rename, move to another office, or deactivate. An officer who still looks after
    clients or groups neither moves nor leaves: reassign the portfolio first."""
    if full_name is None and office_id is None and active is None:
        raise InvalidInput("nothing to change: send full_name, office_id or active",
                           field="body")
    staff = await get_staff(uow, principal, staff_id, for_update=True)
    changed = staff
    if full_name is not None:
        changed = replace(changed, full_name=model.clean_name(full_name, field="full_name",
                                                              max_len=200))
    if office_id is not None and office_id != staff.office_id:
        office = model.check_attachment(staff.role,
                                        await _attachable(uow, principal, office_id))
        changed = replace(changed, office_id=office.id, office_path=office.path)
    if active is not None:
        if active and not staff.active:
            model.check_attachment(staff.role,
                                   await repo.get_office(uow.conn, changed.office_id))
        changed = replace(changed, active=active)
    moving = changed.office_id != staff.office_id or (staff.active and not changed.active)
    if moving:
        held = await repo.portfolio_size(uow.conn, staff.id)
        if held:
            raise Conflict(f"the officer still looks after {held} client(s) or group(s); "
                           "reassign the portfolio first",
                           field="office_id" if office_id is not None else "active",
                           portfolio=held)
    if changed == staff:
        return staff
    saved = await repo.update_staff(uow.conn, changed)
    uow.emit(_assigned(saved, principal.sub,
                           staff.office_id if saved.office_id != staff.office_id else None),
                 key=saved.id)
    return saved
