"""The saga participant: ReserveCredit / ReleaseCredit, and exposure from loans.events.

Every change to a client's exposure locks its ``credit_accounts`` row first
(``SELECT … FOR UPDATE``), so two reservations racing for one client are decided
one after the other. Commands are idempotent on ``reservation_id``: a repeat
changes nothing and replies with the outcome already decided.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

from services.clients.domain.credit import (
    CreditAccount,
    Granted,
    LimitPolicy,
    after_loan_closed,
    decide_reservation,
    move_for,
)
from services.clients.handlers import behaviour, group_credit
from services.clients.repository import behaviour as behaviour_repo
from services.clients.repository import clients as client_repo
from services.clients.repository import credit as repo
from services.clients.repository.credit import Reservation
from shared.contracts.clients import (
    CreditLimitChanged,
    CreditRejected,
    CreditReleased,
    CreditReserved,
    ReleaseCredit,
    ReserveCredit,
)
from shared.contracts.loans import LoanClosed, LoanDisbursed, LoanWrittenOff, RepaymentApplied
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.clients.credit")
ZERO = Decimal("0.00")


async def reserve_credit(uow: UnitOfWork, cmd: ReserveCredit, env: Envelope | None = None
                         ) -> None:
    conn = uow.conn
    # Lock the client's credit row before looking at the reservation: a twin of this
    # command waits here and then finds the reservation already decided.
    account = await repo.get_account(conn, cmd.client_id, for_update=True)
    existing = await repo.get_reservation(conn, cmd.reservation_id)
    client = await client_repo.get(conn, cmd.client_id)
    if existing is not None:
        log.info("ReserveCredit %s repeated; replying with its outcome (%s)",
                 cmd.reservation_id, existing.status)
        _reply(uow, cmd, existing, account, client.phone if client else None,
               client.language if client else None)
        return
    in_arrears, held = await behaviour.standing(uow, cmd.client_id)
    if await group_credit.group_in_arrears(uow, cmd.client_id):
        in_arrears += 1   # joint liability: a member of the group is in arrears
    decision = decide_reservation(
        kyc_status=client.kyc_status if client else None,
        blocked=client.blocked if client else False, account=account, amount=cmd.amount,
        loans_in_arrears=in_arrears, written_off_hold=held)
    if isinstance(decision, Granted):
        await repo.save_account(conn, decision.account)
        res = Reservation(cmd.reservation_id, cmd.client_id, cmd.saga_id, cmd.loan_id,
                          cmd.amount, "reserved", None, None, ZERO)
        await repo.insert_reservation(conn, res)
        _reply(uow, cmd, res, decision.account, client.phone if client else None,
               client.language if client else None)
        return
    res = Reservation(cmd.reservation_id, cmd.client_id, cmd.saga_id, cmd.loan_id, cmd.amount,
                      "rejected", decision.reason, decision.detail, ZERO)
    await repo.insert_reservation(conn, res)
    _reply(uow, cmd, res, account, None, None)


def _reply(uow: UnitOfWork, cmd: ReserveCredit, res: Reservation,
           account: CreditAccount | None, phone: str | None, language: str | None) -> None:
    if res.status == "rejected":
        uow.emit(CreditRejected(
            client_id=cmd.client_id, reservation_id=res.reservation_id, saga_id=res.saga_id,
            loan_id=res.loan_id, reason=res.reject_reason,
            detail=res.reject_detail or ""), key=cmd.client_id)
        return
    if res.status == "released" or account is None or phone is None:
        log.warning("ReserveCredit %s repeated after it was %s; no reply",
                    res.reservation_id, res.status)
        return
    uow.emit(CreditReserved(
        client_id=cmd.client_id, reservation_id=res.reservation_id, saga_id=res.saga_id,
        loan_id=res.loan_id, amount=res.amount, currency=cmd.currency,
        credit_limit=account.credit_limit, exposure=account.exposure, msisdn=phone,
        language=language),
        key=cmd.client_id)


async def release_credit(uow: UnitOfWork, cmd: ReleaseCredit, env: Envelope | None = None
                         ) -> None:
    conn = uow.conn
    account = await repo.get_account(conn, cmd.client_id, for_update=True)
    res = await repo.get_reservation(conn, cmd.reservation_id)
    released = ZERO
    if res is None:
        # Nothing was reserved under this id: remember the release so that a late
        # ReserveCredit with the same id cannot take credit any more.
        log.warning("ReleaseCredit %s for an unknown reservation", cmd.reservation_id)
        await repo.insert_reservation(conn, Reservation(
            cmd.reservation_id, cmd.client_id, cmd.saga_id, cmd.loan_id, ZERO, "released",
            None, None, ZERO))
    elif res.status == "reserved" and account is not None:
        released = res.amount
        await repo.save_account(conn, CreditAccount(
            account.client_id, account.credit_limit, account.cycle,
            max(account.reserved - res.amount, ZERO), account.outstanding))
        await repo.set_reservation(conn, res.reservation_id, status="released",
                                   outstanding=ZERO)
    elif res.status == "released":
        released = res.amount
        log.info("ReleaseCredit %s repeated; replying again", cmd.reservation_id)
    elif res.status in ("outstanding", "closed", "written_off"):
        log.error("ReleaseCredit %s refused: the loan %s was already disbursed (%s)",
                  cmd.reservation_id, res.loan_id, res.status)
        return
    uow.emit(CreditReleased(client_id=cmd.client_id, reservation_id=cmd.reservation_id,
                            saga_id=cmd.saga_id, loan_id=cmd.loan_id, amount=released),
             key=cmd.client_id)


async def _loan_exposure(uow: UnitOfWork, loan_id: str, event: str
                         ) -> tuple[Reservation, CreditAccount] | None:
    found = await repo.reservation_for_loan(uow.conn, loan_id)
    if found is None:
        log.info("%s for loan %s: no credit was reserved here for it; ignored", event, loan_id)
        return None
    # Same lock order as the commands: the client's credit row, then the reservation.
    account = await repo.get_account(uow.conn, found.client_id, for_update=True)
    if account is None:
        log.info("%s for loan %s: client %s is unknown here; ignored", event, loan_id,
                 found.client_id)
        return None
    res = await repo.get_reservation(uow.conn, found.reservation_id)
    assert res is not None
    return res, account


async def on_loan_disbursed(uow: UnitOfWork, evt: LoanDisbursed, env: Envelope | None = None
                            ) -> None:
    found = await _loan_exposure(uow, evt.loan_id, "LoanDisbursed")
    if found is None:
        return
    res, account = found
    if res.status != "reserved":
        log.info("LoanDisbursed for loan %s: reservation is %s; nothing to move",
                 evt.loan_id, res.status)
        return
    await repo.save_account(uow.conn, CreditAccount(
        account.client_id, account.credit_limit, account.cycle,
        max(account.reserved - res.amount, ZERO), account.outstanding + evt.principal))
    await repo.set_reservation(uow.conn, res.reservation_id, status="outstanding",
                               outstanding=evt.principal)


async def on_repayment_applied(uow: UnitOfWork, evt: RepaymentApplied,
                               env: Envelope | None = None) -> None:
    found = await _loan_exposure(uow, evt.loan_id, "RepaymentApplied")
    if found is None:
        return
    res, account = found
    if res.status != "outstanding":
        log.info("RepaymentApplied for loan %s: reservation is %s; ignored", evt.loan_id,
                 res.status)
        return
    # The loan's own figure is authoritative: it also heals a missed event.
    new_outstanding = min(max(evt.outstanding_principal, ZERO), res.outstanding)
    delta = res.outstanding - new_outstanding
    await repo.save_account(uow.conn, CreditAccount(
        account.client_id, account.credit_limit, account.cycle, account.reserved,
        max(account.outstanding - delta, ZERO)))
    await repo.set_reservation(uow.conn, res.reservation_id, status="outstanding",
                               outstanding=new_outstanding)


async def _end_loan(uow: UnitOfWork, loan_id: str, event: str, status: str
                    ) -> tuple[Reservation, CreditAccount] | None:
    found = await _loan_exposure(uow, loan_id, event)
    if found is None:
        return None
    res, account = found
    if res.status not in ("reserved", "outstanding"):
        log.info("%s for loan %s: reservation is already %s; ignored", event, loan_id,
                 res.status)
        return None
    reserved, outstanding = account.reserved, account.outstanding
    if res.status == "reserved":
        reserved = max(reserved - res.amount, ZERO)
    else:
        outstanding = max(outstanding - res.outstanding, ZERO)
    freed = CreditAccount(account.client_id, account.credit_limit, account.cycle, reserved,
                          outstanding)
    await repo.set_reservation(uow.conn, res.reservation_id, status=status, outstanding=ZERO)
    return res, freed


def loan_closed_handler(
    policy: LimitPolicy,
) -> Callable[[UnitOfWork, LoanClosed, Envelope | None], Awaitable[None]]:
    async def on_loan_closed(uow: UnitOfWork, evt: LoanClosed, env: Envelope | None = None
                             ) -> None:
        ended = await _end_loan(uow, evt.loan_id, "LoanClosed", "closed")
        if ended is None:
            if await repo.get_account(uow.conn, evt.client_id, for_update=True):
                await behaviour.end_loan(uow, loan_id=evt.loan_id, client_id=evt.client_id,
                                         how="closed", worst_days=evt.max_days_in_arrears)
            return
        res, freed = ended
        # The cycle's worst days in arrears (loans' figure; else the worst LoanInArrears
        # heard of) decide whether the limit grows, stays or shrinks.
        worst = await behaviour.end_loan(uow, loan_id=evt.loan_id, client_id=res.client_id,
                                         how="closed", worst_days=evt.max_days_in_arrears)
        grown = after_loan_closed(freed, policy, worst)
        await repo.save_account(uow.conn, grown)
        await behaviour_repo.record_cycle(uow.conn, behaviour_repo.CycleDecision(
            loan_id=evt.loan_id, client_id=grown.client_id, closed_on=evt.closed_on,
            worst_days=worst, move=move_for(policy.behaviour, worst),
            previous_limit=freed.credit_limit, credit_limit=grown.credit_limit,
            previous_cycle=freed.cycle, cycle=grown.cycle))
        client = await client_repo.get(uow.conn, grown.client_id)
        uow.emit(CreditLimitChanged(
            client_id=grown.client_id, credit_limit=grown.credit_limit, cycle=grown.cycle,
            previous_limit=freed.credit_limit, phone=client.phone if client else None,
            language=client.language if client else None,
            sms_consent=client.sms_consent if client else None), key=grown.client_id)

    return on_loan_closed


async def on_loan_written_off(uow: UnitOfWork, evt: LoanWrittenOff, env: Envelope | None = None
                              ) -> None:
    ended = await _end_loan(uow, evt.loan_id, "LoanWrittenOff", "written_off")
    if ended is not None:
        _, freed = ended
        # The exposure is gone from our books; the limit does not grow on a written-off
        # loan.
        await repo.save_account(uow.conn, freed)
    # The client's credit is held until two operators lift it.
    await behaviour.on_written_off(uow, evt)
