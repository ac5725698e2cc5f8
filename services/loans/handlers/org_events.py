"""The organisation from ``clients.events``: clients' offices and officers (and their
loans'), transfers, officer reassignments, offices, staff and groups."""

from __future__ import annotations

import logging

from services.loans.handlers.events import Handler, on_client_registered
from services.loans.repository import org
from shared.contracts.clients import (
    ClientConsentChanged,
    ClientLanguageChanged,
    ClientPhoneChanged,
    ClientRegistered,
    ClientTransferred,
    GroupDissolved,
    GroupFormed,
    GroupMemberRemoved,
    LoanOfficerReassigned,
    OfficeChanged,
    OfficeOpened,
    StaffAssigned,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.org")


async def on_registered(uow: UnitOfWork, msg: ClientRegistered, env: Envelope) -> None:
    await on_client_registered(uow, msg, env)
    await org.client_registered(uow.conn, msg.client_id, office_id=msg.office_id,
                                office_path=msg.office_path, officer_id=msg.officer_id,
                                full_name=msg.full_name, phone=msg.phone)


async def on_phone(uow: UnitOfWork,
                   msg: ClientPhoneChanged | ClientLanguageChanged | ClientConsentChanged,
                   env: Envelope) -> None:
    if msg.phone is not None:
        await org.client_phone(uow.conn, msg.client_id, msg.phone)


async def on_transferred(uow: UnitOfWork, msg: ClientTransferred, env: Envelope) -> None:
    moved = await org.transfer_client(uow.conn, msg.client_id, msg.to_office_id,
                                      msg.to_office_path, msg.to_officer_id)
    log.info("client %s transferred to %s (officer %s): %d loan(s) moved", msg.client_id,
             msg.to_office_path, msg.to_officer_id, moved)


async def on_reassigned(uow: UnitOfWork, msg: LoanOfficerReassigned, env: Envelope) -> None:
    if msg.client_id is not None:
        moved = await org.reassign_client(uow.conn, msg.client_id, msg.from_officer_id,
                                          msg.to_officer_id)
    elif msg.group_id is not None:
        moved = await org.reassign_group(uow.conn, msg.group_id, msg.from_officer_id,
                                         msg.to_officer_id)
    else:
        return
    log.info("officer %s -> %s (%s): %d loan(s) moved", msg.from_officer_id,
             msg.to_officer_id, msg.client_id or msg.group_id, moved)


async def on_office_opened(uow: UnitOfWork, msg: OfficeOpened, env: Envelope) -> None:
    await org.office_opened(uow.conn, msg.office_id, msg.office_kind, msg.name, msg.path)


async def on_office_changed(uow: UnitOfWork, msg: OfficeChanged, env: Envelope) -> None:
    await org.office_opened(uow.conn, msg.office_id, msg.office_kind, msg.name, msg.path,
                            msg.status)


async def on_staff(uow: UnitOfWork, msg: StaffAssigned, env: Envelope) -> None:
    await org.staff_assigned(uow.conn, msg.staff_id, msg.full_name, msg.role, msg.office_id,
                             msg.office_path, msg.active)


async def on_group_formed(uow: UnitOfWork, msg: GroupFormed, env: Envelope) -> None:
    await org.group_formed(uow.conn, msg.group_id, msg.partner_id, msg.name, msg.leader_id,
                           msg.member_ids, msg.office_id, msg.office_path, msg.officer_id)


async def on_group_member_removed(uow: UnitOfWork, msg: GroupMemberRemoved,
                                  env: Envelope) -> None:
    await org.group_member_removed(uow.conn, msg.group_id, msg.client_id)


async def on_group_dissolved(uow: UnitOfWork, msg: GroupDissolved, env: Envelope) -> None:
    await org.group_dissolved(uow.conn, msg.group_id)


ORG_HANDLERS: dict[str, Handler] = {
    "ClientRegistered": on_registered,
    "ClientPhoneChanged": on_phone,
    "ClientLanguageChanged": on_phone,
    "ClientConsentChanged": on_phone,
    "ClientTransferred": on_transferred,
    "LoanOfficerReassigned": on_reassigned,
    "OfficeOpened": on_office_opened,
    "OfficeChanged": on_office_changed,
    "StaffAssigned": on_staff,
    "GroupFormed": on_group_formed,
    "GroupMemberRemoved": on_group_member_removed,
    "GroupDissolved": on_group_dissolved,
}
