"""The office projection from ``clients.events`` (consumer group ``payments-clients``):
the office tree (``OfficeOpened``/``OfficeChanged``), each client's office
(``ClientRegistered``, ``ClientTransferred``), so journal lines get their office even when
loans' events do not carry it; and the loan → client link from ``LoanSubmitted``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.payments.domain import office_transfers as transfers
from services.payments.repository import gl as gl_repo
from services.payments.repository import offices as repo
from shared.clock import business_date
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
    """The client and its loans belong to the new office from now on, and what their
    loans hold at any other office moves there, dated the transfer's business date: one
    entry per loan (``office_transfer:<request>:<loan>``), each branch's side balanced
    through the inter-branch liaison account (domain/office_transfers.py)."""
    conn = uow.conn
    await repo.learn_office(conn, msg.from_office_id, msg.from_office_path)
    await repo.learn_office(conn, msg.to_office_id, msg.to_office_path)
    await repo.set_client_office(conn, msg.client_id, msg.to_office_id, msg.to_office_path)
    moved = await repo.move_client_loans(conn, msg.client_id, msg.to_office_id)
    day = business_date(env.occurred_at)
    held: dict[str, list[transfers.Held]] = {}
    for loan, account, office, net in await repo.loan_balances_elsewhere(
            conn, msg.client_id, msg.to_office_id, transfers.LOAN_ACCOUNT_PREFIXES):
        held.setdefault(loan, []).append(transfers.Held(account, office, net))
    posted = 0
    for loan, balances in held.items():
        lines = transfers.transfer_lines(balances, msg.to_office_id)
        posted += await gl_repo.post_booked(
            conn, f"office_transfer:{msg.request_id}:{loan}", "office_transfer", loan, day,
            f"client {msg.client_id} transferred {msg.from_office_id} -> "
            f"{msg.to_office_id}", lines)
    log.info("client %s transferred %s -> %s: %d loan(s) now booked there, %d loan(s)' "
             "balances moved on %s", msg.client_id, msg.from_office_id, msg.to_office_id,
             moved, posted, day)


def office_handlers() -> dict[str, Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]]:
    return {
        "OfficeOpened": on_office_opened,
        "OfficeChanged": on_office_changed,
        "ClientRegistered": on_client_registered,
        "ClientTransferred": on_client_transferred,
    }
