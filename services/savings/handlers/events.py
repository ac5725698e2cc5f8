"""What other services publish: clients (the projection), payments (deposits from a
wallet), loans (a loan closed frees its compulsory savings)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.savings.domain.account import canonical_id, canonical_loan_id, check_deposit
from services.savings.handlers import compulsory
from services.savings.handlers.accounts import _credit
from services.savings.repository import accounts as accounts_repo
from services.savings.repository import arrears_cover as arrears_repo
from services.savings.repository import clients as repo
from shared.clock import Clock, business_date, system_clock
from shared.contracts.clients import (
    ClientBlocked,
    ClientKycRejected,
    ClientKycVerified,
    ClientPhoneChanged,
    ClientRegistered,
    ClientTransferred,
    ClientUnblocked,
)
from shared.contracts.loans import LoanClosed, LoanWrittenOff
from shared.contracts.savings import SavingsDepositReceived, SavingsDepositRejected
from shared.envelope import Envelope
from shared.errors import Conflict
from shared.uow import UnitOfWork

log = logging.getLogger("noria.savings.events")

Handler = Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]


async def on_client_registered(uow: UnitOfWork, msg: ClientRegistered, env: Envelope) -> None:
    await repo.upsert(uow.conn, msg.client_id, partner_id=msg.partner_id, phone=msg.phone,
                      office_id=msg.office_id, office_path=msg.office_path)
    if msg.office_path is not None:
        # registered again after accounts were opened (a replay): they follow the client
        await accounts_repo.move_office(uow.conn, msg.client_id, msg.office_id or "",
                                        msg.office_path)


async def on_client_transferred(uow: UnitOfWork, msg: ClientTransferred, env: Envelope
                                ) -> None:
    """The client now belongs to another office: so do its accounts."""
    await repo.upsert(uow.conn, msg.client_id, office_id=msg.to_office_id,
                      office_path=msg.to_office_path)
    moved = await accounts_repo.move_office(uow.conn, msg.client_id, msg.to_office_id,
                                            msg.to_office_path)
    log.info("client %s transferred to %s: %d savings account(s) moved", msg.client_id,
             msg.to_office_path, moved)


async def on_kyc_verified(uow: UnitOfWork, msg: ClientKycVerified, env: Envelope) -> None:
    await repo.upsert(uow.conn, msg.client_id, kyc_status="verified")


async def on_kyc_rejected(uow: UnitOfWork, msg: ClientKycRejected, env: Envelope) -> None:
    await repo.upsert(uow.conn, msg.client_id, kyc_status="rejected")


async def on_blocked(uow: UnitOfWork, msg: ClientBlocked, env: Envelope) -> None:
    await repo.upsert(uow.conn, msg.client_id, blocked=True)


async def on_unblocked(uow: UnitOfWork, msg: ClientUnblocked, env: Envelope) -> None:
    await repo.upsert(uow.conn, msg.client_id, blocked=False)


async def on_phone_changed(uow: UnitOfWork, msg: ClientPhoneChanged, env: Envelope) -> None:
    await repo.upsert(uow.conn, msg.client_id, phone=msg.phone)


PROJECTION_HANDLERS: dict[str, Handler] = {
    "ClientRegistered": on_client_registered,
    "ClientKycVerified": on_kyc_verified,
    "ClientKycRejected": on_kyc_rejected,
    "ClientBlocked": on_blocked,
    "ClientUnblocked": on_unblocked,
    "ClientPhoneChanged": on_phone_changed,
    "ClientTransferred": on_client_transferred,
}


def deposit_handler(clock: Clock = system_clock) -> Handler:
    async def on_deposit_received(uow: UnitOfWork, msg: SavingsDepositReceived,
                                  env: Envelope) -> None:
        """A wallet collection payments credited to this account: once per payment."""
        canonical = canonical_id(msg.account_id)
        a = None if canonical is None else await accounts_repo.get(uow.conn, canonical,
                                                                   for_update=True)
        reason = ("unknown_account" if a is None else
                  "account_closed" if a.status in ("closed", "rejected") else
                  "currency_not_supported" if msg.currency != "MAD" else None)
        if a is not None and reason is None:
            try:
                check_deposit(a)
            except Conflict:
                reason = "account_not_active"
        if a is None or reason is not None:
            uow.emit(SavingsDepositRejected(
                account_id=msg.account_id, client_id=a.client_id if a else "",
                payment_id=msg.payment_id, amount=msg.amount,
                reason=reason),
                key=msg.account_id)
            return
        await _credit(uow, a, amount=msg.amount, key=f"payment:{msg.payment_id}",
                      channel="mobile_money", by="payments",
                      today=business_date(clock()), payment_id=msg.payment_id)
    return on_deposit_received


async def on_loan_finished(uow: UnitOfWork, msg: LoanClosed | LoanWrittenOff,
                           env: Envelope) -> None:
    """The loan a compulsory savings account secures is over: its savings are free."""
    freed = await accounts_repo.close_linked(uow.conn, canonical_loan_id(msg.loan_id))
    await compulsory.on_loan_over(uow, msg.loan_id, type(msg).__name__)
    await arrears_repo.clear_loan(uow.conn, canonical_loan_id(msg.loan_id))
    if freed:
        log.info("loan %s ended: compulsory savings %s are free", msg.loan_id, freed)


LOAN_HANDLERS: dict[str, Handler] = {"LoanClosed": on_loan_finished,
                                     "LoanWrittenOff": on_loan_finished}
