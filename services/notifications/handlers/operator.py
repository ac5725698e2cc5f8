"""What an operator asks over HTTP: send a template now, resend a message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.notifications.domain.messages import Recipient, suppression_reason
from services.notifications.domain.triggers import Trigger
from services.notifications.handlers.policies import Policies
from services.notifications.handlers.triggers import create_message
from services.notifications.repository import contacts as contacts_repo
from services.notifications.repository import messages as messages_repo
from services.notifications.repository.messages import NewMessage
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class SendNow:
    template: str
    client_id: str | None = None
    phone: str | None = None
    language: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


def _in_office(recipient: Recipient, within_office: str | None) -> bool:
    path = recipient.office_path
    return within_office is None or (path is not None and (
        path == within_office or path.startswith(within_office + "/")))


async def send_now(uow: UnitOfWork, policies: Policies, command: SendNow,
                   requested_by: str, within_office: str | None = None) -> uuid.UUID:
    """An urgent message of ``command.template`` to a known client (or a phone).

    ``within_office``: the sender's office path; a client outside that subtree is
    unknown to it, and so is a phone none of its clients has."""
    if command.client_id is None and command.phone is None:
        raise InvalidInput("give a client_id or a phone", field="client_id")
    if command.client_id:
        recipient = await contacts_repo.get_recipient(uow.conn, command.client_id)
        if recipient is None or not _in_office(recipient, within_office):
            raise NotFound(f"no client {command.client_id} is known", field="client_id")
    elif within_office is not None and command.phone is not None and not any(
            _in_office(r, within_office)
            for r in await contacts_repo.recipients_by_phone(uow.conn, command.phone)):
        raise NotFound(f"no client of your office has the phone {command.phone}",
                       field="phone")
    made = await create_message(
        uow, policies, Trigger(command.template, command.client_id, None, command.variables,
                               phone=command.phone),
        language=command.language, urgent=True, requested_by=requested_by)
    assert made is not None  # no source event: never held, never a duplicate
    return made.id


async def resend(uow: UnitOfWork, policies: Policies, original: asyncpg.Record,
                 requested_by: str) -> uuid.UUID:
    """A new urgent copy of ``original`` to the client's current phone, if the client
    may receive SMS now."""
    recipient = (await contacts_repo.get_recipient(uow.conn, original["client_id"])
                 if original["client_id"] else None)
    reason = suppression_reason(recipient) if recipient else None
    if reason:
        raise Conflict(f"the client cannot receive SMS now ({reason})",
                       field="client_id", reason=reason)
    phone = recipient.phone if recipient else original["phone"]
    if not phone:
        raise Conflict("the message has no phone to resend to", field="phone")
    new_id = uuid.uuid4()
    await messages_repo.insert_message(uow.conn, NewMessage(
        id=new_id, template=original["template"],
        template_version=original["template_version"], language=original["language"],
        text=original["text"], encoding=original["encoding"], segments=original["segments"],
        urgent=True, status="queued", not_before=policies.clock(),
        client_id=original["client_id"], partner_id=original["partner_id"],
        loan_id=original["loan_id"], phone=phone, resend_of=original["id"],
        requested_by=requested_by))
    return new_id
