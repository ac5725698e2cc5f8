"""The withdrawal saga: hold and ask payments to pay out, then settle, release, or wait.

``request`` places the hold and emits the one ``PayOutWithdrawal`` of the withdrawal in
the same transaction (the outbox); payments' replies go through ``domain.withdrawal
.decide``, so a redelivered or repeated reply moves nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal

from services.savings.domain import account as model
from services.savings.domain.withdrawal import Reply, WithdrawalStatus, decide
from services.savings.handlers.accounts import get as get_account
from services.savings.handlers.accounts import visible
from services.savings.metrics import MOVEMENTS
from services.savings.repository import accounts as accounts_repo
from services.savings.repository import clients as clients_repo
from services.savings.repository import products as products_repo
from services.savings.repository import withdrawals as repo
from services.savings.repository.withdrawals import Withdrawal
from shared.auth import Principal
from shared.clock import Clock, business_date, system_clock
from shared.contracts.savings import (
    PayOutWithdrawal,
    WithdrawalCompleted,
    WithdrawalInDoubt,
    WithdrawalPaidOut,
    WithdrawalPayoutFailed,
    WithdrawalPayoutInDoubt,
    WithdrawalReleased,
    WithdrawalRequested,
)
from shared.envelope import Envelope
from shared.errors import InvalidInput, NotFound
from shared.identifiers import canonical_moroccan_mobile
from shared.uow import UnitOfWork

log = logging.getLogger("noria.savings.withdrawals")


async def request(uow: UnitOfWork, principal: Principal, account_id: str, *, amount: Decimal,
                  msisdn: str | None, today: dt.date, now: dt.datetime,
                  payout_deadline_s: float, provider: str | None) -> Withdrawal:
    a = await get_account(uow, principal, account_id, for_update=True)
    model.check_withdrawal(a)
    product = await products_repo.get(uow.conn, a.product_id, a.product_version)
    assert product is not None
    terms = product.terms
    fee = Decimal(0)
    floor = Decimal(0)
    if terms.kind == "voluntary":
        used = await repo.count_in_month(uow.conn, a.id, today)
        fee = model.withdrawal_fee(terms.withdrawal_fee, terms.free_withdrawals_per_month, used)
        floor = terms.min_balance
    if msisdn is None:
        client = await clients_repo.get(uow.conn, a.client_id)
        msisdn = client.phone if client is not None else None
        if msisdn is None:
            raise InvalidInput("no wallet is known for this client: send msisdn",
                               field="msisdn")
    else:
        msisdn = canonical_moroccan_mobile(msisdn, field="msisdn")
    model.place_hold(a.balances, amount + fee, floor=floor)   # 409 when it does not fit
    await accounts_repo.move(uow.conn, a.id, held=amount + fee)
    w = await repo.insert(uow.conn, id=str(uuid.uuid4()), account_id=a.id,
                          client_id=a.client_id, partner_id=a.partner_id, amount=amount,
                          fee=fee, msisdn=msisdn, requested_by=principal.sub,
                          requested_on=today)
    uow.emit(WithdrawalRequested(
        account_id=a.id, client_id=a.client_id, withdrawal_id=w.id, amount=amount, fee=fee,
        msisdn=msisdn, requested_by=principal.sub), key=a.id)
    uow.emit(PayOutWithdrawal(
        withdrawal_id=w.id, account_id=a.id, client_id=a.client_id, partner_id=a.partner_id,
        amount=amount, msisdn=msisdn, provider=provider,
        deadline=now + dt.timedelta(seconds=payout_deadline_s)), key=a.id)
    return w


async def get(uow: UnitOfWork, principal: Principal, withdrawal_id: str) -> Withdrawal:
    w = await repo.get(uow.conn, withdrawal_id.strip().lower())
    a = None if w is None else await accounts_repo.get(uow.conn, w.account_id)
    if w is None or a is None or not visible(a, principal):
        raise NotFound("no such withdrawal", field="withdrawal_id")
    return w


async def _reply(uow: UnitOfWork, withdrawal_id: str, reply: Reply, *, reason: str | None,
                 provider: str | None = None, provider_reference: str | None = None,
                 clock: Clock = system_clock) -> None:
    w = await repo.get(uow.conn, withdrawal_id)
    if w is None:
        log.warning("payments replied %s for unknown withdrawal %s; ignored", reply,
                    withdrawal_id)
        return
    a = await accounts_repo.get(uow.conn, w.account_id, for_update=True)   # lock order:
    w = await repo.get(uow.conn, withdrawal_id, for_update=True)          # account first
    assert a is not None and w is not None
    status: WithdrawalStatus = w.status  # type: ignore[assignment]
    decision = decide(status, reply)
    today = business_date(clock())
    if decision.action == "none":
        return
    await repo.set_status(uow.conn, w.id, decision.status, reason=reason, provider=provider,
                          provider_reference=provider_reference)
    MOVEMENTS.labels(f"withdrawal_{decision.status}").inc()
    if decision.action == "anomaly":
        log.error("withdrawal %s was %s and payments now says %s: held for an operator",
                  w.id, w.status, reply)
        return
    if decision.action == "mark_in_doubt":
        uow.emit(WithdrawalInDoubt(account_id=a.id, client_id=a.client_id, withdrawal_id=w.id,
                                   amount=w.amount, reason=reason or "in doubt"), key=a.id)
        return
    if decision.action == "release":
        balances = await accounts_repo.move(uow.conn, a.id, held=-w.hold)
        uow.emit(WithdrawalReleased(
            account_id=a.id, client_id=a.client_id, withdrawal_id=w.id, amount=w.amount,
            reason=reason or "payout failed", available_balance=balances.available), key=a.id)
        return
    # settle: the hold becomes the debit of the amount and the fee
    await accounts_repo.add_line(uow.conn, a.id, key=f"withdrawal:{w.id}", kind="withdrawal",
                                 amount=-w.amount, value_date=today, created_by=w.requested_by,
                                 reference=provider_reference)
    if w.fee > 0:
        await accounts_repo.add_line(uow.conn, a.id, key=f"fee:{w.id}", kind="withdrawal_fee",
                                     amount=-w.fee, value_date=today,
                                     created_by=w.requested_by)
    balances = await accounts_repo.move(uow.conn, a.id, ledger=-w.hold, held=-w.hold,
                                        client_txn_on=today)
    uow.emit(WithdrawalCompleted(
        account_id=a.id, client_id=a.client_id, withdrawal_id=w.id, amount=w.amount,
        fee=w.fee, provider_reference=provider_reference, ledger_balance=balances.ledger,
        available_balance=balances.available, value_date=today), key=a.id)


def reply_handlers(clock: Clock = system_clock) -> dict[str, object]:
    async def on_paid_out(uow: UnitOfWork, msg: WithdrawalPaidOut, env: Envelope) -> None:
        await _reply(uow, msg.withdrawal_id, "paid", reason=None, provider=msg.provider,
                     provider_reference=msg.provider_reference, clock=clock)

    async def on_failed(uow: UnitOfWork, msg: WithdrawalPayoutFailed, env: Envelope) -> None:
        await _reply(uow, msg.withdrawal_id, "failed", reason=msg.reason,
                     provider=msg.provider, clock=clock)

    async def on_in_doubt(uow: UnitOfWork, msg: WithdrawalPayoutInDoubt, env: Envelope
                          ) -> None:
        await _reply(uow, msg.withdrawal_id, "in_doubt", reason=msg.reason,
                     provider=msg.provider, clock=clock)

    return {"WithdrawalPaidOut": on_paid_out, "WithdrawalPayoutFailed": on_failed,
            "WithdrawalPayoutInDoubt": on_in_doubt}
