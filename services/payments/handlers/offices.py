"""The office projection from ``clients.events`` (consumer group ``payments-clients``):
the office tree (``OfficeOpened``/``OfficeChanged``), each client's office
(``ClientRegistered``, ``ClientTransferred``), so journal lines get their office even when
loans' events do not carry it; and the loan → client link from ``LoanSubmitted``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.payments.repository import offices as repo
from shared.contracts.clients import (
    ClientRegistered,
    ClientTransferred,
    OfficeChanged,
    OfficeOpened,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.offices")


async def on_office_opened(uow: UnitOfWork, msg: OfficeOpened, env: Envelope) -> None:
    await repo.learn_office(uow.conn, msg.office_id, msg.path, name=msg.name,
                            kind=msg.office_kind, status="open", authoritative=True)


async def on_office_changed(uow: UnitOfWork, msg: OfficeChanged, env: Envelope) -> None:
    await repo.learn_office(uow.conn, msg.office_id, msg.path, name=msg.name,
                            kind=msg.office_kind, status=msg.status, authoritative=True)


async def on_client_registered(uow: UnitOfWork, msg: ClientRegistered, env: Envelope
                               ) -> None:
    if not msg.office_id:
        return
    if msg.office_path:
        await repo.learn_office(uow.conn, msg.office_id, msg.office_path)
    await repo.set_client_office(uow.conn, msg.client_id, msg.office_id, msg.office_path)


async def on_client_transferred(uow: UnitOfWork, msg: ClientTransferred, env: Envelope
                                ) -> None:
    """The client and its loans belong to the new office from now on: what was booked
    before stays in the old office's books (no balance is moved)."""
    await repo.learn_office(uow.conn, msg.from_office_id, msg.from_office_path)
    await repo.learn_office(uow.conn, msg.to_office_id, msg.to_office_path)
    await repo.set_client_office(uow.conn, msg.client_id, msg.to_office_id,
                                 msg.to_office_path)
    moved = await repo.move_client_loans(uow.conn, msg.client_id, msg.to_office_id)
    log.info("client %s transferred %s -> %s: %d loan(s) now booked there", msg.client_id,
             msg.from_office_id, msg.to_office_id, moved)


def office_handlers() -> dict[str, Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]]:
    return {
        "OfficeOpened": on_office_opened,
        "OfficeChanged": on_office_changed,
        "ClientRegistered": on_client_registered,
        "ClientTransferred": on_client_transferred,
    }
