"""The contact projection of clients.events (phone, language, consent, blocking, office
and loan officer), the loan → client table learnt from loans.events and the savings
accounts learnt from savings.events."""

from __future__ import annotations

import logging
from typing import Any

from services.notifications.domain.held import account_hold_key, client_lock_key
from services.notifications.domain.phones import heard_phone
from services.notifications.handlers.held import release_held
from services.notifications.handlers.policies import Policies
from services.notifications.repository import contacts as contacts_repo
from services.notifications.repository import held as held_repo
from services.notifications.repository import savings as savings_repo
from shared.contracts import clients as c
from shared.contracts import loans as ln
from shared.contracts import savings as sv
from shared.envelope import Envelope
from shared.inbox import Handler
from shared.uow import UnitOfWork

log = logging.getLogger("noria.notifications")


def client_registered_handler(policies: Policies) -> Handler:
    async def on_client_registered(uow: UnitOfWork, e: c.ClientRegistered,
                                   env: Envelope) -> None:
        # The same per-client lock as create_message takes before holding a trigger (see
        # there): the triggers held for this client are all committed before we look.
        await held_repo.lock_client(uow.conn, client_lock_key(e.client_id))
        phone = heard_phone(e.phone, source=env.type)
        await contacts_repo.upsert_registered(
            uow.conn, e.client_id, e.partner_id, phone, e.language, e.sms_consent,
            office=contacts_repo.Office(e.office_id, e.office_path, e.officer_id))
        await release_held(uow, policies, e.client_id)

    return on_client_registered


async def _update(uow: UnitOfWork, client_id: str, kind: str, **changes: Any) -> None:
    if not await contacts_repo.update_recipient(uow.conn, client_id, **changes):
        log.info("%s for client %s, who is not in the projection: ignored", kind, client_id)


async def on_phone_changed(uow: UnitOfWork, e: c.ClientPhoneChanged, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, phone=heard_phone(e.phone, source=env.type))


async def on_language_changed(uow: UnitOfWork, e: c.ClientLanguageChanged,
                              env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, language=e.language)


async def on_consent_changed(uow: UnitOfWork, e: c.ClientConsentChanged, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, consent=e.sms_consent)


async def on_blocked(uow: UnitOfWork, e: c.ClientBlocked, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, blocked=True)


async def on_unblocked(uow: UnitOfWork, e: c.ClientUnblocked, env: Envelope) -> None:
    await _update(uow, e.client_id, env.type, blocked=False)


async def on_loan_event(uow: UnitOfWork, event: ln.LoanEvent, env: Envelope) -> None:
    await contacts_repo.remember_loan(uow.conn, event.loan_id, event.client_id,
                                      getattr(event, "partner_id", None))


async def on_client_transferred(uow: UnitOfWork, e: c.ClientTransferred,
                                env: Envelope) -> None:
    """The client (its messages with it) now belongs to the new office and officer."""
    await _update(uow, e.client_id, env.type, office_id=e.to_office_id,
                  office_path=e.to_office_path, officer_id=e.to_officer_id)


async def on_officer_reassigned(uow: UnitOfWork, e: c.LoanOfficerReassigned,
                                env: Envelope) -> None:
    """A client's new loan officer (its office is unchanged; the event's copy of it is
    taken too). One about a group changes no client: each member has its own."""
    if e.client_id is None:
        return
    await _update(uow, e.client_id, env.type, office_id=e.office_id,
                  office_path=e.office_path, officer_id=e.to_officer_id)


def savings_account_opened_handler(policies: Policies) -> Handler:
    async def on_savings_account_opened(uow: UnitOfWork, e: sv.SavingsAccountOpened,
                                        env: Envelope) -> None:
        # The lock a refund about this account takes before holding itself (see
        # handlers/triggers.py): every refund held for it is committed before we look.
        key = account_hold_key(e.account_id)
        await held_repo.lock_client(uow.conn, client_lock_key(key))
        await savings_repo.remember_opened(uow.conn, e.account_id, e.client_id,
                                           env.occurred_at)
        await release_held(uow, policies, key)

    return on_savings_account_opened
