"""Solidarity groups: form (3 to 10 verified members of one partner), read, dissolve,
remove a member. A group with a live group loan keeps its members and cannot be dissolved."""

from __future__ import annotations

import uuid

import asyncpg

from services.clients.domain.group import MIN_MEMBERS, check_group, check_members_in
from services.clients.domain.office import Office, check_officer_for
from services.clients.handlers import group_credit, offices
from services.clients.repository import groups as repo
from services.clients.repository.groups import Group
from shared.auth import Principal
from shared.contracts.clients import GroupDissolved, GroupFormed, GroupMemberRemoved
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


async def form(uow: UnitOfWork, principal: Principal, *, name: str, leader_id: str,
               member_ids: list[str], office_id: str | None = None,
               officer_id: str | None = None) -> Group:
    # Lock every member row (in id order: two groups racing cannot deadlock).
    states = await repo.member_states(uow.conn, sorted(set(member_ids)))
    visible = {s.client_id: s for s in states
               if principal.can_see(s.partner_id) and principal.can_see_office(s.office_path)}
    clean_name, ids = check_group(name=name, leader_id=leader_id, member_ids=member_ids,
                                  members=visible)
    partner_id = visible[ids[0]].partner_id
    office, officer = await _placement(uow, principal, office_id or visible[leader_id].office_id,
                                       officer_id)
    check_members_in(office, [visible[cid].office_path for cid in ids])
    group_id = str(uuid.uuid4())
    try:
        async with uow.conn.transaction():
            await repo.insert(uow.conn, group_id=group_id, partner_id=partner_id,
                              name=clean_name, leader_id=leader_id, formed_by=principal.sub,
                              member_ids=ids, office_id=office.id, office_path=office.path,
                              officer_id=officer)
    except asyncpg.UniqueViolationError:
        raise Conflict("a member is already in an active group", field="member_ids") from None
    uow.emit(GroupFormed(group_id=group_id, partner_id=partner_id, name=clean_name,
                         leader_id=leader_id, member_ids=ids, office_id=office.id,
                         office_path=office.path, officer_id=officer), key=group_id)
    group = await repo.get(uow.conn, group_id)
    assert group is not None
    return group


async def _placement(uow: UnitOfWork, principal: Principal, office_id: str,
                     officer_id: str | None) -> tuple[Office, str | None]:
    """The group's office (named, or else the leader's) and its loan officer."""
    office = await offices.referenced_office(uow, principal, office_id, field="office_id")
    if office.status != "open":
        raise InvalidInput("the office is closed", field="office_id")
    if officer_id is None:
        return office, None
    officer = await offices.referenced_officer(uow, principal, officer_id)
    return office, check_officer_for(office, officer).id


async def get(uow: UnitOfWork, principal: Principal, group_id: str, *,
              for_update: bool = False) -> Group:
    group = await repo.get(uow.conn, group_id, for_update=for_update)
    if group is None or not (principal.can_see(group.partner_id)
                             and principal.can_see_office(group.office_path)):
        raise NotFound("no such group", field="id")
    return group


async def dissolve(uow: UnitOfWork, principal: Principal, group_id: str, reason: str) -> Group:
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput("dissolving a group needs a reason", field="reason")
    group = await get(uow, principal, group_id, for_update=True)
    if group.status != "active":
        raise Conflict("the group is already dissolved", field="status")
    await _refuse_if_live(uow, group_id, "be dissolved")
    await repo.dissolve(uow.conn, group_id)
    uow.emit(GroupDissolved(group_id=group_id, partner_id=group.partner_id,
                            dissolved_by=principal.sub, reason=clean,
                            member_ids=group.member_ids, office_id=group.office_id,
                            office_path=group.office_path, officer_id=group.officer_id),
             key=group_id)
    dissolved = await repo.get(uow.conn, group_id)
    assert dissolved is not None
    return dissolved


async def remove_member(uow: UnitOfWork, principal: Principal, group_id: str, client_id: str,
                        reason: str) -> Group:
    """A member leaves an active group: not while the group has a live group loan, not the
    leader, and never below the smallest group."""
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput("removing a member needs a reason", field="reason")
    group = await get(uow, principal, group_id, for_update=True)
    if group.status != "active":
        raise Conflict("the group is dissolved", field="status")
    if client_id not in await repo.active_member_ids(uow.conn, group_id):
        raise NotFound("no such member of the group", field="client_id")
    await _refuse_if_live(uow, group_id, "lose a member")
    if client_id == group.leader_id:
        raise Conflict("the leader cannot leave the group; dissolve it instead",
                       field="client_id")
    remaining = [m for m in await repo.active_member_ids(uow.conn, group_id)
                 if m != client_id]
    if len(remaining) < MIN_MEMBERS:
        raise Conflict(f"a solidarity group keeps at least {MIN_MEMBERS} members",
                       field="client_id")
    await repo.remove_member(uow.conn, group_id, client_id)
    uow.emit(GroupMemberRemoved(group_id=group_id, partner_id=group.partner_id,
                                client_id=client_id, removed_by=principal.sub, reason=clean,
                                member_ids=remaining, office_id=group.office_id,
                                office_path=group.office_path, officer_id=group.officer_id),
             key=group_id)
    changed = await repo.get(uow.conn, group_id)
    assert changed is not None
    return changed


async def _refuse_if_live(uow: UnitOfWork, group_id: str, what: str) -> None:
    """409 naming the live group loan: the group keeps its members until every member's
    loan has closed (or the group loan's disbursement was compensated)."""
    live = await group_credit.live_group_loan(uow, group_id)
    if live is not None:
        raise Conflict(f"the group has a live group loan ({live}): it cannot {what} until "
                       "every member's loan has closed", field="status",
                       reason="live_group_loan", group_loan_id=live)
