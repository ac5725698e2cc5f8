"""Transfers and portfolio reassignments: proposed by one operator, decided by another.

A transfer moves one client to another office and/or loan officer (an *assignment* is
a transfer within the client's office); its loans follow from ``ClientTransferred``.
A reassignment gives every client and active group of one loan officer to another
(``LoanOfficerReassigned``, one per client and per group, keyed by each).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import asyncpg

from services.clients.domain import office as office_model
from services.clients.domain import transfer as model
from services.clients.domain.office import Office, StaffMember
from services.clients.domain.transfer import OrgRequest, RequestKind
from services.clients.handlers.offices import referenced_office, referenced_officer
from services.clients.repository import clients as clients_repo
from services.clients.repository import groups as groups_repo
from services.clients.repository import offices as offices_repo
from services.clients.repository import requests as repo
from shared.auth import Principal
from shared.contracts.clients import ClientTransferred, LoanOfficerReassigned
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def get(uow: UnitOfWork, principal: Principal, request_id: str, kind: RequestKind, *,
              for_update: bool = False) -> OrgRequest:
    """The request, or 404 unless the token sees both of its ends."""
    r = await repo.get(uow.conn, request_id, kind, for_update=for_update)
    if r is None or not (principal.can_see_office(r.from_office_path)
                         and principal.can_see_office(r.to_office_path)):
        raise NotFound("no such request", field="id")
    return r


async def _target_officer(uow: UnitOfWork, principal: Principal, office: Office,
                          officer_id: str | None) -> StaffMember | None:
    if officer_id is None:
        return None
    officer = await referenced_officer(uow, principal, officer_id)
    return office_model.check_officer_for(office, officer, field="to_officer_id")


# --- transfers ----------------------------------------------------------------

async def propose_transfer(uow: UnitOfWork, principal: Principal, *, client_id: str,
                           to_office_id: str | None, to_officer_id: str | None, reason: str
                           ) -> OrgRequest:
    clean = model.clean_reason(reason)
    client = await clients_repo.get(uow.conn, client_id)
    if client is None or not (principal.can_see(client.partner_id)
                              and principal.can_see_office(client.office_path)):
        raise InvalidInput("no such client", field="client_id")
    office = await referenced_office(uow, principal, to_office_id or client.office_id,
                                     field="to_office_id")
    if office.status != "open":
        raise InvalidInput("the office is closed", field="to_office_id")
    await _target_officer(uow, principal, office, to_officer_id)
    model.check_transfer(
        from_office_id=client.office_id, from_officer_id=client.officer_id,
        to_office_id=office.id, to_officer_id=to_officer_id,
        active_group_id=await groups_repo.active_group_of(uow.conn, client.id))
    request = OrgRequest(
        id=str(uuid.uuid4()), kind="transfer", reason=clean, requested_by=principal.sub,
        client_id=client.id, from_office_id=client.office_id,
        from_office_path=client.office_path, to_office_id=office.id, to_office_path=office.path,
        from_officer_id=client.officer_id, to_officer_id=to_officer_id)
    try:
        async with uow.conn.transaction():
            return await repo.insert(uow.conn, request)
    except asyncpg.UniqueViolationError:
        raise Conflict("a transfer of this client is already awaiting approval",
                       field="client_id") from None


async def approve_transfer(uow: UnitOfWork, principal: Principal, request_id: str
                           ) -> OrgRequest:
    r = await get(uow, principal, request_id, "transfer", for_update=True)
    decided = model.decide(r, approve=True, by=principal.sub, reason=None, now=_now())
    assert r.client_id is not None
    client = await clients_repo.get(uow.conn, r.client_id, for_update=True)
    assert client is not None
    if (client.office_id, client.officer_id) != (r.from_office_id, r.from_officer_id):
        raise Conflict("the client moved since this transfer was proposed; reject it and "
                       "propose again", field="client_id")
    office = await offices_repo.get_office(uow.conn, r.to_office_id)
    if office is None or office.status != "open":
        raise Conflict("the target office is closed", field="to_office_id")
    if r.to_officer_id is not None:
        office_model.check_officer_for(
            office, await offices_repo.get_staff(uow.conn, r.to_officer_id),
            field="to_officer_id")
    model.check_transfer(
        from_office_id=client.office_id, from_officer_id=client.officer_id,
        to_office_id=office.id, to_officer_id=r.to_officer_id,
        active_group_id=await groups_repo.active_group_of(uow.conn, client.id))
    moved = await clients_repo.move(uow.conn, client.id, office_id=office.id,
                                    office_path=office.path, officer_id=r.to_officer_id)
    saved = await repo.save_decision(uow.conn, replace(decided, moved_clients=1))
    uow.emit(ClientTransferred(
        client_id=moved.id, request_id=r.id, partner_id=moved.partner_id,
        from_office_id=r.from_office_id, from_office_path=r.from_office_path,
        to_office_id=moved.office_id, to_office_path=moved.office_path,
        from_officer_id=r.from_officer_id, to_officer_id=moved.officer_id,
        requested_by=r.requested_by, approved_by=principal.sub), key=moved.id)
    return saved


# --- reassignments --------------------------------------------------------------

async def _officer(uow: UnitOfWork, principal: Principal, officer_id: str, field: str
                   ) -> StaffMember:
    officer = await referenced_officer(uow, principal, officer_id)
    if officer is None:
        raise InvalidInput("no such loan officer", field=field)
    if officer.role != "loan_officer":
        raise InvalidInput(f"{officer.id} is not a loan officer", field=field)
    return officer


async def _check_successor(uow: UnitOfWork, from_officer_id: str, to: StaffMember) -> None:
    """The successor must be active and able to look after every client and group of the
    portfolio: it works in each one's office or below it."""
    if not to.active:
        raise InvalidInput(f"loan officer {to.id} is no longer active", field="to_officer_id")
    for path in await clients_repo.portfolio_offices(uow.conn, from_officer_id):
        if not office_model.within(to.office_path, path):
            raise InvalidInput(f"loan officer {to.id} works in {to.office_path} and cannot "
                               f"look after clients of {path}", field="to_officer_id")


async def propose_reassignment(uow: UnitOfWork, principal: Principal, *,
                               from_officer_id: str, to_officer_id: str, reason: str
                               ) -> OrgRequest:
    clean = model.clean_reason(reason)
    source = await _officer(uow, principal, from_officer_id, "from_officer_id")
    target = await _officer(uow, principal, to_officer_id, "to_officer_id")
    model.check_reassignment(from_officer_id=source.id, to_officer_id=target.id)
    if not await offices_repo.portfolio_size(uow.conn, source.id):
        raise InvalidInput("the officer looks after no client or group",
                           field="from_officer_id")
    await _check_successor(uow, source.id, target)
    request = OrgRequest(
        id=str(uuid.uuid4()), kind="reassignment", reason=clean, requested_by=principal.sub,
        from_office_id=source.office_id, from_office_path=source.office_path,
        to_office_id=target.office_id, to_office_path=target.office_path,
        from_officer_id=source.id, to_officer_id=target.id)
    try:
        async with uow.conn.transaction():
            return await repo.insert(uow.conn, request)
    except asyncpg.UniqueViolationError:
        raise Conflict("a reassignment of this officer's portfolio is already awaiting "
                       "approval", field="from_officer_id") from None


async def approve_reassignment(uow: UnitOfWork, principal: Principal, request_id: str
                               ) -> OrgRequest:
    r = await get(uow, principal, request_id, "reassignment", for_update=True)
    decided = model.decide(r, approve=True, by=principal.sub, reason=None, now=_now())
    assert r.from_officer_id is not None and r.to_officer_id is not None
    target = await offices_repo.get_staff(uow.conn, r.to_officer_id, for_update=True)
    assert target is not None
    await _check_successor(uow, r.from_officer_id, target)
    clients = await clients_repo.reassign_portfolio(uow.conn, r.from_officer_id, target.id)
    groups = await groups_repo.reassign_portfolio(uow.conn, r.from_officer_id, target.id)
    common = {"request_id": r.id, "from_officer_id": r.from_officer_id,
              "to_officer_id": target.id, "requested_by": r.requested_by,
              "approved_by": principal.sub}
    for c in clients:
        uow.emit(LoanOfficerReassigned(client_id=c.id, office_id=c.office_id,
                                       office_path=c.office_path, **common), key=c.id)
    for group_id in groups:
        group = await groups_repo.get(uow.conn, group_id)
        assert group is not None
        uow.emit(LoanOfficerReassigned(group_id=group.id, office_id=group.office_id,
                                       office_path=group.office_path, **common), key=group.id)
    return await repo.save_decision(uow.conn, replace(
        decided, moved_clients=len(clients), moved_groups=len(groups)))


async def reject(uow: UnitOfWork, principal: Principal, request_id: str, kind: RequestKind,
                 reason: str | None) -> OrgRequest:
    r = await get(uow, principal, request_id, kind, for_update=True)
    decided = model.decide(r, approve=False, by=principal.sub, reason=reason, now=_now())
    return await repo.save_decision(uow.conn, decided)
