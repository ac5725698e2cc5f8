"""Opt-outs (over the API, or a STOP reply from the phone) and replies from phones."""

from __future__ import annotations

from services.notifications.domain.messages import is_stop
from services.notifications.repository import contacts as contacts_repo
from services.notifications.repository import replies as replies_repo
from shared.contracts.notifications import SmsOptedOut
from shared.uow import UnitOfWork


async def record_opt_out(uow: UnitOfWork, phone: str, source: str,
                         requested_by: str | None) -> list[str]:
    """Withdraw consent for every client with ``phone``; SmsOptedOut for each (or one
    for the phone alone). Returns the clients' ids."""
    ids = await contacts_repo.opt_out(uow.conn, phone, source, requested_by)
    for client_id in ids or [None]:  # type: ignore[list-item]
        uow.emit(SmsOptedOut(phone=phone, client_id=client_id, source=source),
                 key=client_id or phone)
    return ids


async def record_reply(uow: UnitOfWork, provider: str, phone: str, text: str) -> bool:
    """Store a reply; STOP withdraws consent for that phone. True when it was a STOP."""
    stop = is_stop(text)
    await replies_repo.insert_reply(uow.conn, provider, phone, text, stop)
    if stop:
        await record_opt_out(uow, phone, "sms_stop", None)
    return stop
