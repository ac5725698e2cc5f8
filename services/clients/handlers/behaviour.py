"""Loans' behaviour that decides credit: arrears, cures, write-offs and closed cycles.

Every handler locks the client's credit row first (the lock ``ReserveCredit`` takes),
so a reservation and an arrears fact about the same client are decided one after the
other, then the loan's own row. Each message takes effect once (inbox); a fact replayed
after newer ones about the same loan changes nothing (``domain.behaviour``).
"""

from __future__ import annotations

import datetime as dt
import logging

from services.clients.domain import behaviour as model
from services.clients.repository import behaviour as repo
from services.clients.repository import credit as credit_repo
from shared.contracts.loans import LoanArrearsCured, LoanInArrears, LoanWrittenOff
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.clients.behaviour")


def _published_at(env: Envelope | None) -> dt.datetime:
    return env.occurred_at if env is not None else dt.datetime.now(dt.UTC)


async def _known_client(uow: UnitOfWork, client_id: str, event: str, loan_id: str) -> bool:
    account = await credit_repo.get_account(uow.conn, client_id, for_update=True)
    if account is None:
        log.info("%s for loan %s: client %s is unknown here; ignored", event, loan_id,
                 client_id)
        return False
    return True


async def on_loan_in_arrears(uow: UnitOfWork, evt: LoanInArrears, env: Envelope | None = None
                             ) -> None:
    if not await _known_client(uow, evt.client_id, "LoanInArrears", evt.loan_id):
        return
    state = await repo.get_loan(uow.conn, evt.loan_id, evt.client_id)
    new = model.in_arrears(state, business_date=evt.business_date, at=_published_at(env),
                           days=evt.days_in_arrears, bucket=evt.bucket,
                           amount_overdue=evt.amount_overdue)
    if new is None:
        log.info("LoanInArrears for loan %s (%s) is older than what is known (%s, ended: "
                 "%s); ignored", evt.loan_id, evt.business_date, state.as_of, state.ended)
        return
    await repo.save_loan(uow.conn, new)


async def on_loan_arrears_cured(uow: UnitOfWork, evt: LoanArrearsCured,
                                env: Envelope | None = None) -> None:
    if not await _known_client(uow, evt.client_id, "LoanArrearsCured", evt.loan_id):
        return
    state = await repo.get_loan(uow.conn, evt.loan_id, evt.client_id)
    new = model.cured(state, business_date=evt.business_date, at=_published_at(env))
    if new is None:
        log.info("LoanArrearsCured for loan %s (%s) is older than what is known (%s, "
                 "ended: %s); ignored", evt.loan_id, evt.business_date, state.as_of,
                 state.ended)
        return
    await repo.save_loan(uow.conn, new)


async def end_loan(uow: UnitOfWork, *, loan_id: str, client_id: str, how: model.Ended,
                   worst_days: int | None = None) -> int:
    """The loan closed or was written off: no longer in arrears. Returns the worst days
    in arrears known for it. The caller holds the client's credit row."""
    state = await repo.get_loan(uow.conn, loan_id, client_id)
    new = model.ended(state, how, worst_days=worst_days)
    if new is None:
        return state.worst_days
    await repo.save_loan(uow.conn, new)
    return new.worst_days


async def on_written_off(uow: UnitOfWork, evt: LoanWrittenOff) -> None:
    """The loan no longer counts as in arrears; the client's credit is held until two
    operators lift the hold."""
    if not await _known_client(uow, evt.client_id, "LoanWrittenOff", evt.loan_id):
        return
    await end_loan(uow, loan_id=evt.loan_id, client_id=evt.client_id, how="written_off",
                   worst_days=evt.days_in_arrears)
    if await repo.place_hold(uow.conn, loan_id=evt.loan_id, client_id=evt.client_id,
                             written_off_by=evt.written_off_by):
        log.info("client %s: credit held, loan %s written off", evt.client_id, evt.loan_id)


async def standing(uow: UnitOfWork, client_id: str) -> tuple[int, bool]:
    """(loans in arrears, an active written-off hold) for ``decide_reservation``."""
    arrears = await repo.loans_in_arrears(uow.conn, client_id)
    held = await repo.holds(uow.conn, client_id, active_only=True)
    return len(arrears), bool(held)
